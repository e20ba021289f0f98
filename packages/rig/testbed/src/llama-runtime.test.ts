import { createLogger, sha256File } from '@slm-copilot/task-kit';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { $ } from 'zx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISPATCH_CPU_VARIANTS } from './cpu-variant.js';
import { ensureLlamaSource } from './llama-source.js';
import { ensureLlamaRuntime, type LlamaRuntime } from './llama-runtime.js';

const quiet = createLogger({ level: 'warn' });

let rt: LlamaRuntime;
let dir: string;
beforeAll(async () => {
  rt = await ensureLlamaRuntime();
  dir = await mkdtemp(join(tmpdir(), 'llama-runtime-'));
}, 40 * 60_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('llama-server runtime archive', () => {
  it('is named after the release, and its size and sha256 are the real file', async () => {
    expect(rt.archive.endsWith(`/llama-server-${rt.release}-dispatch.tar.xz`)).toBe(true);
    expect(rt.sha256).toBe(await sha256File(rt.archive));
    expect((await $({ quiet: true })`stat -c %s ${rt.archive}`).stdout.trim()).toBe(String(rt.size));
    expect(rt.variants).toEqual([...DISPATCH_CPU_VARIANTS]);
    expect(rt.commit).toBe((await ensureLlamaSource({ log: quiet })).commit);
  });

  it('holds bin/ (executables + CPU modules) and lib/, owned by 0:0, dated at the commit', async () => {
    const list = (await $({ quiet: true })`tar --numeric-owner -tvJf ${rt.archive}`).stdout.trim().split('\n');
    const names = list.map((l) => l.split(/\s+/).at(-1)!);
    for (const n of [
      'bin/llama-server',
      'bin/llama-bench',
      'lib/libllama.so.0',
      'lib/libggml-base.so.0',
      'llama-runtime.json',
    ])
      expect(names).toContain(n);
    for (const v of DISPATCH_CPU_VARIANTS) expect(names).toContain(`bin/libggml-cpu-${v}.so`);
    expect(names).not.toContain('bin/llama-quantize');
    expect(names).toEqual([...names].sort());
    for (const l of list) expect(l.split(/\s+/)[1]).toBe('0/0');
    const src = await ensureLlamaSource({ log: quiet });
    const epoch = Number((await $({ quiet: true, cwd: src.srcDir })`git log -1 --format=%ct`).stdout.trim());
    const mtimes = (
      await $({ quiet: true, env: { ...process.env, TZ: 'UTC' } })`tar --full-time -tvJf ${rt.archive}`
    ).stdout
      .trim()
      .split('\n')
      .map((l) => Date.parse(`${l.split(/\s+/).slice(3, 5).join('T')}Z`) / 1000);
    for (const m of mtimes) expect(m).toBe(epoch);
  });

  it('extracted anywhere, llama-server runs from another directory and the manifest names the variants', async () => {
    await $({ quiet: true })`tar -xJf ${rt.archive} -C ${dir}`;
    const v = await $({ quiet: true, nothrow: true, cwd: '/' })`${join(dir, 'bin', 'llama-server')} --version`;
    expect(v.exitCode, v.stderr).toBe(0);
    const info = JSON.parse(await readFile(join(dir, 'llama-runtime.json'), 'utf8')) as {
      variants: string[];
      commit: string;
    };
    expect(info.variants).toEqual(rt.variants);
    expect(info.commit).toBe(rt.commit);
  });
});
