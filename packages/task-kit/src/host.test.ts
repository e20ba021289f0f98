import { describe, expect, it } from 'vitest';
import { gatherHostFacts, parseCpuinfo, parseMeminfo } from './host.js';

const cpu = (n: number, core: number, flags: string) =>
  `processor\t: ${n}\nmodel name\t: Test CPU\nphysical id\t: 0\ncore id\t\t: ${core}\nflags\t\t: ${flags}\n`;

describe('host facts', () => {
  it('counts physical cores, not hyperthreads', () => {
    const text = [
      cpu(0, 0, 'fpu avx avx2'),
      cpu(1, 1, 'fpu avx avx2'),
      cpu(2, 0, 'fpu avx avx2'),
      cpu(3, 1, 'fpu avx avx2'),
    ].join('\n');
    expect(parseCpuinfo(text)).toEqual({
      cpuFlags: ['fpu', 'avx', 'avx2'],
      physicalCores: 2,
      logicalCpus: 4,
      cpuModel: 'Test CPU',
    });
  });
  it('treats each vCPU as a core when the VM exposes no topology', () => {
    const text = 'processor\t: 0\nflags\t: sse2\n\nprocessor\t: 1\nflags\t: sse2\n';
    expect(parseCpuinfo(text).physicalCores).toBe(2);
  });
  it('reads MemTotal and MemAvailable in bytes', () => {
    expect(parseMeminfo('MemTotal:       24000000 kB\nMemFree: 1 kB\nMemAvailable:   20000000 kB\n')).toEqual({
      memTotalBytes: 24000000 * 1024,
      memAvailableBytes: 20000000 * 1024,
    });
  });
  it('gathers real facts on this machine', async () => {
    const f = await gatherHostFacts();
    expect(f.logicalCpus).toBeGreaterThan(0);
    expect(f.physicalCores).toBeLessThanOrEqual(f.logicalCpus);
    expect(f.memTotalBytes).toBeGreaterThan(256 * 1024 * 1024);
    expect(f.cpuFlags.length).toBeGreaterThan(0);
  });
});
