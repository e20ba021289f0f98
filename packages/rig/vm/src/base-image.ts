import { mkdir, mkdtemp, readdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { exists, formatDuration, withLock, type Logger } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { defaultRecipe, recipeHash, type BaseImageRecipe } from './base-image-recipe.js';
import { buildInto, DEFAULT_TIMEOUTS, removeTree, type BaseImageTimeouts } from './base-image-steps.js';
import { ensureHostTools, TOOLS } from './host-tools.js';
import { defaultLogger, fileSize, mib, vmCacheDir, withTimeout } from './util.js';

export { defaultRecipe, GUEST_DIR, recipeHash, type BaseImageRecipe, type GuestFile } from './base-image-recipe.js';

export interface BaseImage {
  /** The cached qcow2 (compressed). Never modify it: boot an overlay. */
  path: string;
  hash: string;
  /** false when it came from the cache. */
  built: boolean;
  fileBytes: number;
  virtualBytes: number;
  buildMs?: number;
}

export interface EnsureBaseImageOptions {
  recipe?: BaseImageRecipe;
  /** Default `<cache>/vm`. */
  cacheDir?: string;
  log?: Logger;
  /** Rebuild even when cached. */
  force?: boolean;
  /** Per-phase timeouts (ms). */
  timeouts?: Partial<BaseImageTimeouts>;
}

/** What the build steps run on the host. */
const BUILD_TOOLS = [
  TOOLS.mmdebstrap,
  TOOLS.qemuImg,
  TOOLS.extlinux,
  TOOLS.syslinuxMbr,
  TOOLS.mkfs,
  TOOLS.sfdisk,
  TOOLS.losetup,
];

async function imageInfo(file: string): Promise<{ virtualBytes: number }> {
  const r = await $({ quiet: true, timeout: '60s' })`qemu-img info --output=json ${file}`;
  return { virtualBytes: Number(JSON.parse(r.stdout)['virtual-size']) };
}

/**
 * Builds (or finds in the cache) a bootable Debian 12 qcow2 made only from Debian packages:
 * mmdebstrap → guest files → ext4 made from the tree (`mkfs.ext4 -d`, no loop device) → extlinux
 * installed through a loop mount of that file system → MBR disk (sfdisk, syslinux mbr.bin) → `qemu-img convert -c`.
 * Cached as `<cache>/vm/base-<recipe hash>.qcow2`; concurrent callers wait on a lock; built under a temp name.
 */
export async function ensureBaseImage(options: EnsureBaseImageOptions = {}): Promise<BaseImage> {
  const log = defaultLogger(options.log, 'base-image');
  const recipe = options.recipe ?? defaultRecipe;
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const cacheDir = options.cacheDir ?? vmCacheDir();
  const hash = await recipeHash(recipe);
  const final = path.join(cacheDir, `base-${hash}.qcow2`);

  const cached = async (): Promise<BaseImage | undefined> => {
    if (options.force || !(await exists(final))) return undefined;
    const info = await imageInfo(final);
    return { path: final, hash, built: false, fileBytes: await fileSize(final), ...info };
  };
  const hit = await cached();
  if (hit) {
    log.info(`base image cached: ${final} (${mib(hit.fileBytes)})`);
    return hit;
  }

  await mkdir(cacheDir, { recursive: true });
  return withLock(
    path.join(cacheDir, 'locks', `base-${hash}.lock`),
    async () => {
      const again = await cached();
      if (again) return again; // another process built it while we waited
      const started = performance.now();
      await log.phase('base image: host tools', () =>
        withTimeout('host tools', timeouts.tools, ensureHostTools(BUILD_TOOLS, log)),
      );
      // Leftovers of a killed build of this same recipe (we hold its lock, so nobody else is using them).
      for (const name of await readdir(cacheDir))
        if (name.startsWith(`.base-${hash}.tmp-`)) await removeTree(path.join(cacheDir, name), log);
      const work = await mkdtemp(path.join(cacheDir, `.base-${hash}.tmp-`));
      try {
        await buildInto(work, recipe, hash, timeouts, log);
        await rename(path.join(work, 'disk.qcow2'), final);
      } finally {
        await removeTree(work, log);
      }
      const buildMs = performance.now() - started;
      const info = await imageInfo(final);
      const result: BaseImage = { path: final, hash, built: true, fileBytes: await fileSize(final), ...info, buildMs };
      const sizes = `${mib(result.fileBytes)} file, ${mib(result.virtualBytes)} virtual`;
      log.info(`base image built in ${formatDuration(buildMs)}: ${final} (${sizes})`);
      return result;
    },
    { log, what: `base image ${hash}`, timeoutMs: timeouts.lock },
  );
}
