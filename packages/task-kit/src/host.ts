import { readFile } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';

/** What the lifecycle learns about the machine once per stage, then passes to pure renderers. */
export interface HostFacts {
  cpuFlags: string[];
  /** Physical cores (distinct core ids per socket); the right thread count for llama.cpp. */
  physicalCores: number;
  logicalCpus: number;
  cpuModel: string;
  memTotalBytes: number;
  memAvailableBytes: number;
  hostname: string;
  /** Non-loopback addresses, IPv4 first. */
  ipAddresses: string[];
}

/** Parses /proc/cpuinfo text (pure, for tests). */
export function parseCpuinfo(text: string): Pick<HostFacts, 'cpuFlags' | 'physicalCores' | 'logicalCpus' | 'cpuModel'> {
  const blocks = text.split(/\n\s*\n/).filter((b) => /^processor\s*:/m.test(b));
  const field = (block: string, name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(block)?.[1]?.trim();
  const cores = new Set<string>();
  for (const b of blocks) {
    const phys = field(b, 'physical id');
    const core = field(b, 'core id');
    cores.add(phys !== undefined && core !== undefined ? `${phys}:${core}` : `cpu${field(b, 'processor')}`);
  }
  const first = blocks[0] ?? '';
  return {
    cpuFlags: (field(first, 'flags') ?? '').split(/\s+/).filter(Boolean),
    physicalCores: Math.max(1, cores.size),
    logicalCpus: Math.max(1, blocks.length),
    cpuModel: field(first, 'model name') ?? 'unknown',
  };
}

/** Parses /proc/meminfo text (pure). */
export function parseMeminfo(text: string): Pick<HostFacts, 'memTotalBytes' | 'memAvailableBytes'> {
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { memTotalBytes: kb('MemTotal'), memAvailableBytes: kb('MemAvailable') };
}

export async function gatherHostFacts(): Promise<HostFacts> {
  const [cpuinfo, meminfo] = await Promise.all([readFile('/proc/cpuinfo', 'utf8'), readFile('/proc/meminfo', 'utf8')]);
  const ips: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? [])
      if (!a.internal && !(a.family === 'IPv6' && a.address.startsWith('fe80'))) ips.push(a.address);
  }
  ips.sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
  return { ...parseCpuinfo(cpuinfo), ...parseMeminfo(meminfo), hostname: hostname(), ipAddresses: ips };
}
