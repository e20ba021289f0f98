// llama.cpp's source as node-llama-cpp ships it: the npm tarball (packed, never installed) carries a git
// bundle of the tree; it is cloned once into the cache.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exists, formatDuration, withLock, type Logger } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { buildAtomically, cacheDirOf, testbedLogger } from './cache.js';

/** The npm package whose tarball carries llama.cpp's source as a git bundle. */
export const NODE_LLAMA_CPP_VERSION = '3.21.1';

export interface LlamaSource {
  /** llama.cpp source tree (a `git clone` of node-llama-cpp's `llama/gitRelease.bundle`). */
  srcDir: string;
  /** node-llama-cpp version the source came from. */
  version: string;
  /** llama.cpp release tag recorded by node-llama-cpp (`llama/binariesGithubRelease.json`). */
  release: string;
  /** Commit of the bundled tree. */
  commit: string;
}

/** `<cache>/llama.cpp`: the source tree, the builds and the runtime archives. */
export function llamaCacheDir(cacheDir?: string): string {
  return join(cacheDirOf(cacheDir), 'llama.cpp');
}

/** `<cache>/npm/node-llama-cpp-<version>.tgz`, packed once (`npm pack`: the tarball only, never installed). */
async function packTarball(version: string, cacheDir: string | undefined, log: Logger): Promise<string> {
  const npmDir = join(cacheDirOf(cacheDir), 'npm');
  const tgz = join(npmDir, `node-llama-cpp-${version}.tgz`);
  if (await exists(tgz)) return tgz;
  await log.phase(`npm pack node-llama-cpp@${version}`, async () => {
    await mkdir(npmDir, { recursive: true });
    const tmpDir = join(npmDir, `.pack-${process.pid}`);
    await rm(tmpDir, { recursive: true, force: true });
    await mkdir(tmpDir, { recursive: true });
    try {
      const spec = `node-llama-cpp@${version}`;
      await $({ quiet: true, cwd: tmpDir })`npm pack ${spec} --pack-destination ${tmpDir} --silent`;
      await $({ quiet: true })`mv ${join(tmpDir, `node-llama-cpp-${version}.tgz`)} ${tgz}`;
    } finally {
      await rm(tmpDir, { recursive: true, force: true });
    }
  });
  return tgz;
}

/** Extracts the bundle from the tarball and clones it into `srcDir` (atomically), with its source record. */
async function cloneBundle(tgz: string, base: string, srcDir: string, version: string, log: Logger): Promise<void> {
  const unpack = join(base, `.unpack-${process.pid}`);
  const bundle = join(unpack, 'package/llama/gitRelease.bundle');
  const releaseFile = 'package/llama/binariesGithubRelease.json';
  await rm(unpack, { recursive: true, force: true });
  try {
    await log.phase('extract llama/gitRelease.bundle', async () => {
      await mkdir(unpack, { recursive: true });
      await $({ quiet: true })`tar -xzf ${tgz} -C ${unpack} package/llama/gitRelease.bundle ${releaseFile}`;
    });
    const release = (JSON.parse(await readFile(join(unpack, releaseFile), 'utf8')) as { release: string }).release;
    await buildAtomically(srcDir, async (tmp) => {
      await log.phase('git clone the bundle', async () => {
        await $({ quiet: true })`git -c advice.detachedHead=false clone --quiet ${bundle} ${tmp}`;
      });
      const commit = (await $({ quiet: true, cwd: tmp })`git rev-parse HEAD`).stdout.trim();
      const info = JSON.stringify({ version, release, commit }, null, 2) + '\n';
      await writeFile(join(tmp, '.testbed-source.json'), info);
    });
  } finally {
    await rm(unpack, { recursive: true, force: true });
  }
}

/**
 * Makes sure the llama.cpp source tree of node-llama-cpp@{@link NODE_LLAMA_CPP_VERSION}
 * is in the cache: `npm pack` (the tarball only, never installed), extract
 * `package/llama/gitRelease.bundle`, `git clone` it.
 */
export async function ensureLlamaSource(opts: { cacheDir?: string; log?: Logger } = {}): Promise<LlamaSource> {
  const log = testbedLogger(opts.log);
  const version = NODE_LLAMA_CPP_VERSION;
  const base = llamaCacheDir(opts.cacheDir);
  const srcDir = join(base, `src-${version}`);
  const infoFile = join(srcDir, '.testbed-source.json');
  const read = async (): Promise<LlamaSource> => {
    const info = JSON.parse(await readFile(infoFile, 'utf8')) as Omit<LlamaSource, 'srcDir'>;
    return { srcDir, ...info };
  };
  if (await exists(infoFile)) return read();
  const lockFile = join(cacheDirOf(opts.cacheDir), 'locks', `llama-src-${version}.lock`);
  return withLock(
    lockFile,
    async () => {
      if (await exists(infoFile)) return read();
      const t0 = performance.now();
      const tgz = await packTarball(version, opts.cacheDir, log);
      await cloneBundle(tgz, base, srcDir, version, log);
      log.info(`llama.cpp source ready in ${formatDuration(performance.now() - t0)}: ${srcDir}`);
      return read();
    },
    { log, what: 'llama.cpp source' },
  );
}
