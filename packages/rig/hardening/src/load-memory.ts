// Resident memory (VmRSS from /proc) of the engine and of nginx (master + workers summed), sampled
// during the load run, and its growth from the first to the last minute.
import { readFile, readdir } from 'node:fs/promises';

export interface MemorySample {
  atSeconds: number;
  nginxKb: number;
  nginxProcesses: number;
  engineKb: number;
}

export async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
}

/** nginx's master and all its children (the workers; cache helpers if any). */
export async function nginxRss(masterPid: number): Promise<{ kb: number; processes: number }> {
  let kids: number[] = [];
  for (const t of await readdir(`/proc/${masterPid}/task`).catch(() => [] as string[])) {
    const text = await readFile(`/proc/${masterPid}/task/${t}/children`, 'utf8').catch(() => '');
    kids = kids.concat(text.split(/\s+/).filter(Boolean).map(Number));
  }
  let kb = await rssKb(masterPid);
  for (const k of kids) kb += await rssKb(k);
  return { kb, processes: 1 + kids.length };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/**
 * (mean of the last minute − mean of the first minute) / mean of the first minute, for nginx and the
 * engine; null when the run is under 2 minutes.
 */
export function memoryGrowth(memory: MemorySample[], seconds: number): { nginx: number; engine: number } | null {
  if (seconds < 120) return null;
  const first = memory.filter((m) => m.atSeconds <= 60);
  const last = memory.filter((m) => m.atSeconds >= seconds - 60);
  const g = (k: 'nginxKb' | 'engineKb') =>
    (mean(last.map((m) => m[k])) - mean(first.map((m) => m[k]))) / mean(first.map((m) => m[k]));
  return { nginx: g('nginxKb'), engine: g('engineKb') };
}
