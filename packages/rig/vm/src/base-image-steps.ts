// The base image's build steps, in order: mmdebstrap → guest files and units → MBR disk → ext4 from the
// tree → extlinux → qemu-img convert. Any change here that the recipe's data does not show bumps
// BUILD_STEPS_VERSION (base-image-recipe.ts): the recipe hash is the cache key.
import { chmod, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, exists, hashParts, TaskError, type Logger } from '@slm-copilot/task-kit';
import { $, type Shell } from 'zx';
import { fileText, type BaseImageRecipe } from './base-image-recipe.js';
import { tail, withTimeout } from './util.js';

/** Per-phase timeouts (ms). */
export const DEFAULT_TIMEOUTS = {
  tools: 15 * 60_000,
  lock: 60 * 60_000,
  bootstrap: 40 * 60_000,
  customize: 5 * 60_000,
  filesystem: 10 * 60_000,
  bootloader: 3 * 60_000,
  convert: 15 * 60_000,
};
export type BaseImageTimeouts = typeof DEFAULT_TIMEOUTS;

/** One build's paths and settings, shared by its steps. */
interface Build {
  recipe: BaseImageRecipe;
  timeouts: BaseImageTimeouts;
  log: Logger;
  tree: string;
  disk: string;
  mnt: string;
  uuid: string;
  partStartBytes: number;
  partBytes: number;
  sh: Shell;
}

/** Deterministic UUID for the root file system, derived from the recipe hash. */
function uuidFrom(hash: string): string {
  const h = hashParts(['root-fs-uuid', hash], 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Removes a build directory without ever crossing into a mount inside it: if mmdebstrap was killed with
 * /proc, /sys or /dev still mounted in the tree, those are unmounted first and `rm --one-file-system` skips the rest.
 */
export async function removeTree(dir: string, log: Logger): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    log.warn(`unmounting leftover mount ${m}`);
    await $({ quiet: true, nothrow: true })`umount -l ${m}`;
  }
  await $({ quiet: true, nothrow: true, timeout: '10m' })`rm -rf --one-file-system ${dir}`;
}

async function removeMatching(dir: string, match: (name: string) => boolean): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) if (match(n)) await rm(path.join(dir, n), { recursive: true, force: true });
}

async function run(what: string, ms: number, fn: () => Promise<unknown>): Promise<void> {
  try {
    await withTimeout(what, ms, fn());
  } catch (error) {
    if (error instanceof TaskError) throw error;
    const e = error as { stderr?: string; stdout?: string; message?: string };
    throw new TaskError(`${what} failed: ${tail(e.stderr || e.stdout || e.message || String(error), 15)}`, {
      exitCode: ExitCode.failure,
      cause: error,
    });
  }
}

async function bootstrap(b: Build): Promise<void> {
  const { recipe, timeouts, sh } = b;
  await b.log.phase(`base image: mmdebstrap ${recipe.suite} (${recipe.packages.length} packages)`, () =>
    run(
      'mmdebstrap',
      timeouts.bootstrap,
      () =>
        sh({ timeout: timeouts.bootstrap })`mmdebstrap --mode=root --variant=minbase --format=directory ${[
          `--include=${recipe.packages.join(',')}`,
          `--aptopt=${'Acquire::Retries "3"'}`,
        ]} ${recipe.suite} ${b.tree} ${recipe.sources}`,
    ),
  );
}

/** extlinux.conf for the newest kernel in the tree, and fstab (the root by UUID). */
async function writeBootConfig(b: Build): Promise<void> {
  const { tree } = b;
  const kernels = (await readdir(path.join(tree, 'boot'))).filter((n) => n.startsWith('vmlinuz-')).sort();
  const kernel = kernels.at(-1);
  if (!kernel) throw new TaskError('no kernel in the bootstrapped tree (linux-image-cloud-amd64 missing?)');
  const version = kernel.slice('vmlinuz-'.length);
  if (!(await exists(path.join(tree, 'boot', `initrd.img-${version}`))))
    throw new TaskError(`no initrd.img-${version} in the tree`);
  await mkdir(path.join(tree, 'boot/extlinux'), { recursive: true });
  await writeFile(
    path.join(tree, 'boot/extlinux/extlinux.conf'),
    '# SLM-Copilot Debian base image\nDEFAULT debian\nPROMPT 0\nTIMEOUT 1\n\nLABEL debian\n' +
      `  LINUX /boot/vmlinuz-${version}\n  INITRD /boot/initrd.img-${version}\n` +
      `  APPEND root=UUID=${b.uuid} ${b.recipe.kernelArgs}\n`,
  );
  // The root is mounted read-only by the kernel and checked by systemd-fsck-root before it is remounted rw.
  await writeFile(path.join(tree, 'etc/fstab'), `UUID=${b.uuid} / ext4 errors=remount-ro 0 1\n`);
}

async function customize(b: Build): Promise<void> {
  const { recipe, tree } = b;
  await b.log.phase('base image: guest files and units', () =>
    run('customize', b.timeouts.customize, async () => {
      for (const f of recipe.files) {
        const dest = path.join(tree, f.path);
        await mkdir(path.dirname(dest), { recursive: true });
        await writeFile(dest, await fileText(f));
        await chmod(dest, f.mode ?? 0o644);
      }
      await writeBootConfig(b);
      await b.sh`chroot ${tree} systemctl enable ${recipe.enable}`;
      for (const w of recipe.deviceWants) {
        const dir = path.join(tree, 'etc/systemd/system', `${w.device}.wants`);
        await mkdir(dir, { recursive: true });
        await symlink(`/etc/systemd/system/${w.unit}`, path.join(dir, w.unit));
      }
      // Every VM makes its own identity: no SSH host keys, an empty machine-id (first boot), no build leftovers.
      await removeMatching(path.join(tree, 'etc/ssh'), (n) => n.startsWith('ssh_host_'));
      await rm(path.join(tree, 'var/lib/dbus/machine-id'), { force: true });
      await writeFile(path.join(tree, 'etc/machine-id'), '');
      await removeMatching(path.join(tree, 'var/cache/apt/archives'), (n) => n.endsWith('.deb'));
      for (const d of ['var/lib/apt/lists', 'tmp', 'var/tmp']) await removeMatching(path.join(tree, d), () => true);
    }),
  );
}

async function partitionDisk(b: Build): Promise<void> {
  const { sh, disk } = b;
  await b.log.phase('base image: MBR disk (sfdisk, syslinux mbr.bin)', () =>
    run('disk', b.timeouts.filesystem, async () => {
      await sh`truncate -s ${`${b.recipe.diskSizeMiB}M`} ${disk}`;
      await sh({
        input: `label: dos\nstart=2048, size=${b.partBytes / 512}, type=83, bootable\n`,
      })`sfdisk --quiet ${disk}`;
      await sh`dd if=/usr/lib/syslinux/mbr/mbr.bin of=${disk} bs=440 count=1 conv=notrunc status=none`;
    }),
  );
}

/** The file system is written straight into the partition (mke2fs -E offset): no loop device, no copy. */
async function makeFileSystem(b: Build): Promise<void> {
  const { recipe, timeouts } = b;
  const args = [
    ...['-q', '-F', '-L', 'slm-root', '-U', b.uuid, ...recipe.mkfsOptions],
    ...['-E', `offset=${b.partStartBytes}`, '-d', b.tree, b.disk, `${b.partBytes / 1024}k`],
  ];
  await b.log.phase(
    `base image: ext4 from the tree into the partition (${recipe.diskSizeMiB - 1} MiB, mkfs.ext4 -d)`,
    () => run('mkfs.ext4', timeouts.filesystem, () => b.sh({ timeout: timeouts.filesystem })`mkfs.ext4 ${args}`),
  );
}

/** extlinux has to see the mounted file system (it records where ldlinux.sys lies): the one loop mount. */
async function installBootloader(b: Build): Promise<void> {
  const { sh, mnt } = b;
  await b.log.phase('base image: extlinux (loop mount of the partition)', () =>
    run('extlinux', b.timeouts.bootloader, async () => {
      await mkdir(mnt, { recursive: true });
      try {
        await sh`mount -o ${`loop,offset=${b.partStartBytes},sizelimit=${b.partBytes}`} ${b.disk} ${mnt}`;
      } catch (error) {
        const why = (error as { stderr?: string }).stderr?.trim() ?? error;
        throw new TaskError(`cannot loop-mount the new file system to install extlinux: ${why}`, {
          exitCode: ExitCode.environment,
          hint:
            'the base image needs a loop device ' +
            '(modprobe loop; in a container: --privileged or --device /dev/loop-control)',
        });
      }
      try {
        await sh`extlinux --install ${path.join(mnt, 'boot/extlinux')}`;
      } finally {
        await sh({ nothrow: true })`umount ${mnt}`;
      }
    }),
  );
}

async function convert(b: Build, out: string): Promise<void> {
  const { timeouts } = b;
  await b.log.phase('base image: qemu-img convert -c', () =>
    run(
      'qemu-img convert',
      timeouts.convert,
      () => b.sh({ timeout: timeouts.convert })`qemu-img convert -c -O qcow2 -o compat=1.1 ${b.disk} ${out}`,
    ),
  );
}

/** Builds the image of `recipe` as `<work>/disk.qcow2` (everything else in `work` is removed). */
export async function buildInto(
  work: string,
  recipe: BaseImageRecipe,
  hash: string,
  timeouts: BaseImageTimeouts,
  log: Logger,
): Promise<void> {
  const b: Build = {
    recipe,
    timeouts,
    log,
    tree: path.join(work, 'tree'),
    disk: path.join(work, 'disk.raw'),
    mnt: path.join(work, 'mnt'),
    uuid: uuidFrom(hash),
    partStartBytes: 1024 * 1024,
    partBytes: (recipe.diskSizeMiB - 1) * 1024 * 1024,
    // mmdebstrap and the loop mount need root; a child with a hard timeout is killed (zx sends SIGTERM to the tree).
    sh: $({ quiet: true, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C.UTF-8' } }),
  };
  await bootstrap(b);
  await customize(b);
  await partitionDisk(b);
  await makeFileSystem(b);
  await installBootloader(b);
  await convert(b, path.join(work, 'disk.qcow2'));
  await rm(b.disk);
  await removeTree(b.tree, log);
}
