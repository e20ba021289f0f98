import { copyFile, link, mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, formatDuration, TaskError, type Logger } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { ensureHostTools, TOOLS } from './host-tools.js';
import { defaultLogger, mib, tail } from './util.js';

/**
 * Where the install stage inside the build VM finds the mirror (`<STAGED_MIRROR_DIR>/<artifact-name>`).
 * A fixed in-VM path, never the host's: the build VM cannot see host paths.
 */
export const STAGED_MIRROR_DIR = '/var/tmp/slm-copilot-build/mirror';

/** File-system label of the mirror disk; the template mounts `LABEL=slm-mirror` read-only at STAGED_MIRROR_DIR. */
export const MIRROR_DISK_LABEL = 'slm-mirror';

/*
 * Why a second, read-only virtio disk (and not Packer's file provisioner or its HTTP server):
 * - file provisioner (SFTP over QEMU's user network, through SSH): the 14 GB model would cross slirp and
 *   SSH — minutes under KVM, far longer under TCG — and would need 14 GB of the guest's 30 GB disk twice
 *   (staged copy + installed copy).
 * - http_directory: reachable only at 10.0.2.2, which `restrict=on` (no general guest network in the
 *   offline and test builds) blocks unless a guestfwd is added; and still a copy through slirp.
 * - a disk: the host writes the files once into an ext2 image (`mke2fs -d`, no root, no loop mount), QEMU
 *   attaches it read-only, the guest mounts it; reads run at virtio-blk speed and take no guest disk.
 *   Cost: one host-side copy of the mirror (sparse image, removed after the build).
 * ext2, not ext4: no journal (the disk is read-only) and no newer feature flags that the guest kernel
 * (Ubuntu 24.04's 6.8, Debian 12's 6.1) might not know when the host's e2fsprogs is newer.
 * Packer 1.6.6 (builder/qemu/step_run.go) replaces ALL of its default `-drive` arguments — the main disk
 * and the seed CD — when qemuargs has a `-drive`; so packer/slm-copilot.pkr.hcl attaches the disk with
 * `-blockdev` + `-device` (a `-device` in qemuargs only drops Packer's default device list, which for a
 * virtio disk is the NIC alone, and Packer re-adds the NIC when it is missing).
 */

export interface MirrorDisk {
  /** The raw ext2 image (sparse). */
  path: string;
  files: string[];
  /** Bytes of the files staged. */
  bytes: number;
  ms: number;
}

export interface MakeMirrorDiskOptions {
  /** Host directory laid out as `<dir>/<artifact-name>` (sub-directories kept). */
  mirrorDir: string;
  /** The image to write (must be on a file system with room for the staged files). */
  out: string;
  /** Names (relative to mirrorDir) the build VM does not need, e.g. the base image itself. */
  exclude?: (relativePath: string) => boolean;
  log?: Logger;
}

async function listFiles(dir: string, rel = ''): Promise<Array<{ rel: string; size: number }>> {
  const out: Array<{ rel: string; size: number }> = [];
  for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, r)));
    else if (e.isFile()) out.push({ rel: r, size: (await stat(path.join(dir, r))).size });
  }
  return out;
}

/** Image size for `bytes` of files in `count` files: 4 KiB blocks, ext2 indirect blocks, inode tables, slack. */
export function mirrorDiskBytes(files: ReadonlyArray<{ size: number }>): number {
  const blocks = files.reduce((n, f) => n + Math.ceil(f.size / 4096), 0);
  const indirect = Math.ceil(blocks / 1000) + 4 * files.length;
  const bytes = (blocks + indirect) * 4096 * 1.02 + 64 * 1024 * 1024;
  return Math.ceil(bytes / (1024 * 1024)) * 1024 * 1024;
}

/**
 * Writes the mirror's files into a fresh ext2 image labelled MIRROR_DISK_LABEL. Excluded files are left
 * out by staging hard links (a copy across file systems) in `<out>.d`, removed after.
 */
export async function makeMirrorDisk(options: MakeMirrorDiskOptions): Promise<MirrorDisk> {
  const log = defaultLogger(options.log, 'mirror-disk');
  await ensureHostTools([TOOLS.mkfs]);
  const started = performance.now();
  const mirrorDir = path.resolve(options.mirrorDir);
  const st = await stat(mirrorDir).catch(() => undefined);
  if (!st?.isDirectory())
    throw new TaskError(`mirror directory ${mirrorDir} does not exist`, { exitCode: ExitCode.usage });
  const files = (await listFiles(mirrorDir)).filter((f) => !options.exclude?.(f.rel));
  const tree = `${options.out}.d`;
  await rm(tree, { recursive: true, force: true });
  await rm(options.out, { force: true });
  try {
    for (const f of files) {
      const dest = path.join(tree, f.rel);
      await mkdir(path.dirname(dest), { recursive: true });
      await link(path.join(mirrorDir, f.rel), dest).catch(async (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EXDEV' && error.code !== 'EPERM') throw error;
        await copyFile(path.join(mirrorDir, f.rel), dest);
      });
    }
    await mkdir(tree, { recursive: true });
    const bytes = files.reduce((n, f) => n + f.size, 0);
    const size = mirrorDiskBytes(files);
    const args = [
      ...['-q', '-F', '-t', 'ext2', '-m', '0', '-b', '4096', '-N', String(files.length + 64)],
      ...['-L', MIRROR_DISK_LABEL, '-E', 'root_owner=0:0', '-d', tree, options.out, `${size / 1024}k`],
    ];
    const r = await $({ quiet: true, nothrow: true, timeout: '120m' })`mke2fs ${args}`;
    if (r.exitCode !== 0) {
      await rm(options.out, { force: true });
      throw new TaskError(`mke2fs -d of the mirror ${mirrorDir} failed: ${tail(r.stderr || r.stdout, 5)}`, {
        exitCode: ExitCode.failure,
      });
    }
    const ms = performance.now() - started;
    log.info(`mirror disk ${options.out}: ${files.length} files, ${mib(bytes)} in ${formatDuration(ms)}`);
    return { path: options.out, files: files.map((f) => f.rel), bytes, ms };
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
}
