import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mappedCpuVariant } from './cpu-variant.js';

const roots: string[] = [];
afterAll(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

async function procWith(maps: Record<number, string>): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'proc-'));
  roots.push(root);
  for (const [pid, text] of Object.entries(maps)) {
    await mkdir(path.join(root, pid));
    await writeFile(path.join(root, pid, 'maps'), text);
  }
  return root;
}

const line = (file: string) => `7f0000000000-7f0000100000 r-xp 00000000 fd:01 1234 ${file}\n`;

describe('mappedCpuVariant', () => {
  it('names the CPU module the engine mapped, skipping processes without one and vanished ones', async () => {
    const proc = await procWith({
      10: line('/usr/lib/x86_64-linux-gnu/libc.so.6'),
      11: line('/opt/llama.cpp/lib/libggml-base.so') + line('/opt/llama.cpp/lib/libggml-cpu-haswell.so'),
    });
    expect(await mappedCpuVariant([99, 10, 11], proc)).toBe('haswell');
  });

  it('null when no libggml-cpu module is mapped (a static build)', async () => {
    const proc = await procWith({ 12: line('/opt/llama.cpp/bin/llama-server') });
    expect(await mappedCpuVariant([12], proc)).toBeNull();
  });

  it('reads this very process: no ggml module here', async () => {
    expect(await mappedCpuVariant([process.pid])).toBeNull();
  });
});
