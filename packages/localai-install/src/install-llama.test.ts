/**
 * installLlamaServer with the real runtime archive (the dispatch build the image ships, from the
 * test bed) and, for the failure cases, small hand-made archives named as fixtures.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { $ } from 'zx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliancePaths, type AppliancePaths } from '@slm-copilot/context-schema';
import { createLogger } from '@slm-copilot/task-kit';
import { ensureLlamaRuntime, type LlamaRuntime } from '@slm-copilot/testbed';
import { installLlamaServer } from './install.js';

const quiet = createLogger({ quiet: true });
let rt: LlamaRuntime;
let dir: string;

beforeAll(async () => {
  rt = await ensureLlamaRuntime();
  dir = await mkdtemp(path.join(tmpdir(), 'install-llama-'));
}, 40 * 60_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function freshRoot(name: string): Promise<AppliancePaths> {
  const root = path.join(dir, name);
  await mkdir(root, { recursive: true });
  return appliancePaths(root);
}

/** FIXTURE archive: `files` (relative path → content, mode 0755) packed with tar -cJ. */
async function fixtureArchive(name: string, files: Record<string, string>): Promise<string> {
  const src = path.join(dir, `${name}-src`);
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(src, rel)), { recursive: true });
    await writeFile(path.join(src, rel), content, { mode: 0o755 });
  }
  const out = path.join(dir, `${name}.tar.xz`);
  await $({ quiet: true, cwd: src })`tar -cJf ${out} ${Object.keys(files)}`;
  return out;
}

describe('installLlamaServer (real runtime archive)', () => {
  it('extracts bin/ + lib/ beside the unit binary, which runs, and reports archive sha256 and variants', async () => {
    const paths = await freshRoot('ok');
    const r = await installLlamaServer(rt.archive, paths, quiet, { expectSha256: rt.sha256 });
    expect(r).toEqual({ binary: paths.engine.llamaServerBinary, sha256: rt.sha256, variants: [...rt.variants].sort() });
    expect(r.binary.endsWith('/opt/llama.cpp/bin/llama-server')).toBe(true);
    const top = path.dirname(path.dirname(r.binary));
    expect((await readdir(path.join(top, 'lib'))).some((f) => f.startsWith('libllama.so'))).toBe(true);
    const v = await $({ quiet: true, nothrow: true, cwd: '/' })`${r.binary} --version`;
    expect(v.exitCode, v.stderr).toBe(0);
    expect((await readdir(path.dirname(top))).filter((f) => /\.(new|old)-/.test(f))).toEqual([]);
  });

  it('replaces an earlier install completely (no stale files)', async () => {
    const paths = await freshRoot('again');
    const top = path.dirname(path.dirname(paths.engine.llamaServerBinary));
    await mkdir(path.join(top, 'bin'), { recursive: true });
    await writeFile(path.join(top, 'bin', 'libggml-cpu-stale.so'), 'old');
    const r = await installLlamaServer(rt.archive, paths, quiet);
    expect(r.variants).not.toContain('stale');
    expect(existsSync(path.join(top, 'bin', 'libggml-cpu-stale.so'))).toBe(false);
  });

  it('refuses a digest mismatch, naming the archive and both digests, and installs nothing', async () => {
    const paths = await freshRoot('sha');
    const wrong = '0'.repeat(64);
    await expect(installLlamaServer(rt.archive, paths, quiet, { expectSha256: wrong })).rejects.toThrow(
      `${rt.archive}: sha256 ${rt.sha256}, expected ${wrong}`,
    );
    expect(existsSync(paths.engine.llamaServerBinary)).toBe(false);
  });
});

describe('installLlamaServer refuses broken archives and keeps the previous install', () => {
  let paths: AppliancePaths;
  let before: Buffer;
  beforeAll(async () => {
    paths = await freshRoot('keep');
    await installLlamaServer(rt.archive, paths, quiet);
    before = await readFile(paths.engine.llamaServerBinary);
  }, 120_000);

  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['no-binary', { 'lib/libllama.so.0': 'x', 'bin/libggml-cpu-haswell.so': 'x' }, /has no bin\/llama-server/],
    [
      'no-modules',
      { 'bin/llama-server': '#!/bin/sh\necho "version: 1 (fixture)"\n' },
      /no bin\/libggml-cpu-\*\.so: not a runtime-dispatching build/,
    ],
    [
      'does-not-run',
      { 'bin/llama-server': '#!/bin/sh\nexit 3\n', 'bin/libggml-cpu-haswell.so': 'x' },
      /does not run \(--version exit 3\)/,
    ],
  ];
  for (const [name, files, error] of cases) {
    it(`${name}: rejected with a clear error`, async () => {
      const archive = await fixtureArchive(name, files);
      await expect(installLlamaServer(archive, paths, quiet)).rejects.toThrow(error);
      expect((await readFile(paths.engine.llamaServerBinary)).equals(before)).toBe(true);
      const parent = path.dirname(path.dirname(path.dirname(paths.engine.llamaServerBinary)));
      expect((await readdir(parent)).filter((f) => /\.(new|old)-/.test(f))).toEqual([]);
    });
  }

  it('a missing archive is a usage error naming the path', async () => {
    await expect(installLlamaServer(path.join(dir, 'nope.tar.xz'), paths, quiet)).rejects.toThrow(
      /no llama-server runtime archive at .*nope\.tar\.xz/,
    );
  });
});
