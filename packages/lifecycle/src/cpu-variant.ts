import { readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The ggml CPU module a running engine mapped (`libggml-cpu-<tag>.so`): which variant the
 * runtime-dispatching build picked on this CPU — haswell (AVX2) under QEMU TCG, an AVX-512 one on most
 * servers. Read from the processes' memory maps because llama-server logs its backend loading only
 * below its default verbosity. null: no such module mapped (a static build, or not running).
 */
export async function mappedCpuVariant(pids: readonly number[], procRoot = '/proc'): Promise<string | null> {
  for (const pid of pids) {
    const maps = await readFile(path.join(procRoot, String(pid), 'maps'), 'utf8').catch(() => '');
    const m = /libggml-cpu-([A-Za-z0-9_.]+?)\.so\b/.exec(maps);
    if (m) return m[1]!;
  }
  return null;
}
