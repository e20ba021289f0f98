import { mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, formatDuration, TaskError, type Logger } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { ensureHostTools, TOOLS } from './host-tools.js';
import { withFileLock } from './lock.js';
import { defaultLogger, exists, fileSize, hashParts, mib, tail, vmCacheDir, withTimeout } from './util.js';

/** Files of the base image that live in this package's `guest/` directory. */
export const GUEST_DIR = fileURLToPath(new URL('../guest/', import.meta.url));

/** Bump when the build steps below change in a way the recipe's data does not show. */
const BUILD_STEPS_VERSION = '3';

export interface GuestFile {
  /** Absolute path inside the image. */
  path: string;
  /** File in `guest/` to copy, or literal text. */
  from?: string;
  text?: string;
  mode?: number;
}

/** Everything that decides the image's bytes (apart from the Debian archive's state): its hash is the cache key. */
export interface BaseImageRecipe {
  suite: string;
  /** sources.list lines for mmdebstrap. */
  sources: string[];
  packages: string[];
  diskSizeMiB: number;
  hostname: string;
  /** ext4 features extlinux 6.04 cannot boot from are switched off. */
  mkfsOptions: string[];
  kernelArgs: string;
  files: GuestFile[];
  /** Units enabled in multi-user.target. */
  enable: string[];
  /** `<device unit>.wants/<unit>` links: start a unit when a labelled CD appears. */
  deviceWants: Array<{ device: string; unit: string }>;
}

const DEBIAN = process.env.SLM_VM_DEBIAN_MIRROR || 'http://deb.debian.org/debian';
const DEBIAN_SECURITY = process.env.SLM_VM_DEBIAN_SECURITY_MIRROR || 'http://deb.debian.org/debian-security';

export const defaultRecipe: BaseImageRecipe = {
  suite: 'bookworm',
  sources: [
    `deb ${DEBIAN} bookworm main`,
    `deb ${DEBIAN} bookworm-updates main`,
    `deb ${DEBIAN_SECURITY} bookworm-security main`,
  ],
  packages: [
    // boot and base system
    'linux-image-cloud-amd64',
    'systemd-sysv',
    'udev',
    'dbus',
    'kmod',
    'e2fsprogs',
    'zstd',
    'xz-utils',
    'ifupdown',
    'isc-dhcp-client',
    'iproute2',
    'netbase',
    'procps',
    'less',
    'sudo',
    'locales',
    'ca-certificates',
    // access: Packer's SSH communicator, scp/sftp of the test and of Packer's file provisioner
    'openssh-server',
    'openssh-sftp-server',
    // what the appliance needs offline (the test VM has no network)
    'nginx',
    'openssl',
    'certbot',
    'python3',
    'curl',
    // llama-server (built with OpenMP) links libgomp
    'libgomp1',
  ],
  diskSizeMiB: 6144,
  hostname: 'slm-base',
  mkfsOptions: ['-O', '^64bit,^metadata_csum_seed,^orphan_file'],
  kernelArgs: 'ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 biosdevname=0',
  files: [
    { path: '/etc/hostname', text: 'slm-base\n' },
    {
      path: '/etc/hosts',
      text: '127.0.0.1\tlocalhost\n127.0.1.1\tslm-base\n::1\tlocalhost ip6-localhost ip6-loopback\n',
    },
    {
      path: '/etc/network/interfaces',
      text: 'source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n',
    },
    { path: '/etc/default/locale', text: 'LANG=C.UTF-8\n' },
    { path: '/etc/systemd/system/ssh.service.d/10-slm-host-keys.conf', from: 'ssh-host-keys.conf' },
    { path: '/usr/local/sbin/slm-build-access', from: 'slm-build-access', mode: 0o755 },
    { path: '/etc/systemd/system/slm-build-access.service', from: 'slm-build-access.service' },
    { path: '/usr/local/sbin/slm-context-ssh', from: 'slm-context-ssh', mode: 0o755 },
    { path: '/usr/local/lib/slm-copilot/context-value.awk', from: 'context-value.awk' },
    { path: '/etc/systemd/system/slm-context-ssh.service', from: 'slm-context-ssh.service' },
  ],
  enable: ['slm-build-access.service', 'slm-context-ssh.service'],
  deviceWants: [
    { device: 'dev-disk-by\\x2dlabel-cidata.device', unit: 'slm-build-access.service' },
    { device: 'dev-disk-by\\x2dlabel-CONTEXT.device', unit: 'slm-context-ssh.service' },
  ],
};

async function fileText(f: GuestFile): Promise<string> {
  if (f.text !== undefined) return f.text;
  if (f.from) return readFile(path.join(GUEST_DIR, f.from), 'utf8');
  throw new TaskError(`internal: guest file ${f.path} has neither text nor from`);
}

/** The cache key: a hash of the recipe data, every guest file's content and the build steps' version. */
export async function recipeHash(recipe: BaseImageRecipe = defaultRecipe): Promise<string> {
  const texts = await Promise.all(recipe.files.map(fileText));
  return hashParts([BUILD_STEPS_VERSION, JSON.stringify(recipe), ...texts], 16);
}

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
  timeouts?: Partial<
    Record<'tools' | 'lock' | 'bootstrap' | 'customize' | 'filesystem' | 'bootloader' | 'convert', number>
  >;
}

const DEFAULT_TIMEOUTS = {
  tools: 15 * 60_000,
  lock: 60 * 60_000,
  bootstrap: 40 * 60_000,
  customize: 5 * 60_000,
  filesystem: 10 * 60_000,
  bootloader: 3 * 60_000,
  convert: 15 * 60_000,
};

async function imageInfo(file: string): Promise<{ virtualBytes: number }> {
  const r = await $({ quiet: true, timeout: '60s' })`qemu-img info --output=json ${file}`;
  return { virtualBytes: Number(JSON.parse(r.stdout)['virtual-size']) };
}

/** Deterministic UUID for the root file system, derived from the recipe hash. */
function uuidFrom(hash: string): string {
  const h = hashParts(['root-fs-uuid', hash], 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
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
  return withFileLock(
    path.join(cacheDir, 'locks', `base-${hash}.lock`),
    async () => {
      const again = await cached();
      if (again) return again; // another process built it while we waited
      const started = performance.now();
      await log.phase('base image: host tools', () =>
        withTimeout(
          'host tools',
          timeouts.tools,
          ensureHostTools(
            [
              TOOLS.mmdebstrap,
              TOOLS.qemuImg,
              TOOLS.extlinux,
              TOOLS.syslinuxMbr,
              TOOLS.mkfs,
              TOOLS.sfdisk,
              TOOLS.losetup,
            ],
            log,
          ),
        ),
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
      log.info(
        `base image built in ${formatDuration(buildMs)}: ${final} (${mib(result.fileBytes)} file, ${mib(result.virtualBytes)} virtual)`,
      );
      return result;
    },
    { log, what: `base image ${hash}`, timeoutMs: timeouts.lock },
  );
}

/**
 * Removes a build directory without ever crossing into a mount inside it: if mmdebstrap was killed with
 * /proc, /sys or /dev still mounted in the tree, those are unmounted first and `rm --one-file-system` skips the rest.
 */
async function removeTree(dir: string, log: Logger): Promise<void> {
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

async function buildInto(
  work: string,
  recipe: BaseImageRecipe,
  hash: string,
  timeouts: typeof DEFAULT_TIMEOUTS,
  log: Logger,
): Promise<void> {
  const tree = path.join(work, 'tree');
  const disk = path.join(work, 'disk.raw');
  const mnt = path.join(work, 'mnt');
  const uuid = uuidFrom(hash);
  const fstab = `UUID=${uuid} / ext4 errors=remount-ro 0 1`;
  const partStartBytes = 1024 * 1024;
  const partBytes = (recipe.diskSizeMiB - 1) * 1024 * 1024;
  // mmdebstrap and the loop mount need root; a child with a hard timeout is killed (zx sends SIGTERM to the tree).
  const sh = $({ quiet: true, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C.UTF-8' } });

  await log.phase(`base image: mmdebstrap ${recipe.suite} (${recipe.packages.length} packages)`, () =>
    run(
      'mmdebstrap',
      timeouts.bootstrap,
      () =>
        sh({
          timeout: timeouts.bootstrap,
        })`mmdebstrap --mode=root --variant=minbase --format=directory --include=${recipe.packages.join(',')} --aptopt=${'Acquire::Retries "3"'} ${recipe.suite} ${tree} ${recipe.sources}`,
    ),
  );

  await log.phase('base image: guest files and units', () =>
    run('customize', timeouts.customize, async () => {
      for (const f of recipe.files) {
        const dest = path.join(tree, f.path);
        await mkdir(path.dirname(dest), { recursive: true });
        await writeFile(dest, await fileText(f));
        await chmod(dest, f.mode ?? 0o644);
      }
      const kernels = (await readdir(path.join(tree, 'boot'))).filter((n) => n.startsWith('vmlinuz-')).sort();
      const kernel = kernels.at(-1);
      if (!kernel) throw new TaskError('no kernel in the bootstrapped tree (linux-image-cloud-amd64 missing?)');
      const version = kernel.slice('vmlinuz-'.length);
      if (!(await exists(path.join(tree, 'boot', `initrd.img-${version}`))))
        throw new TaskError(`no initrd.img-${version} in the tree`);
      await mkdir(path.join(tree, 'boot/extlinux'), { recursive: true });
      await writeFile(
        path.join(tree, 'boot/extlinux/extlinux.conf'),
        `# SLM-Copilot Debian base image\nDEFAULT debian\nPROMPT 0\nTIMEOUT 1\n\nLABEL debian\n  LINUX /boot/vmlinuz-${version}\n  INITRD /boot/initrd.img-${version}\n  APPEND root=UUID=${uuid} ${recipe.kernelArgs}\n`,
      );
      // The root is mounted read-only by the kernel and checked by systemd-fsck-root before it is remounted rw.
      await writeFile(path.join(tree, 'etc/fstab'), `${fstab}\n`);
      await sh`chroot ${tree} systemctl enable ${recipe.enable}`;
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

  await log.phase('base image: MBR disk (sfdisk, syslinux mbr.bin)', () =>
    run('disk', timeouts.filesystem, async () => {
      await sh`truncate -s ${`${recipe.diskSizeMiB}M`} ${disk}`;
      await sh({
        input: `label: dos\nstart=2048, size=${partBytes / 512}, type=83, bootable\n`,
      })`sfdisk --quiet ${disk}`;
      await sh`dd if=/usr/lib/syslinux/mbr/mbr.bin of=${disk} bs=440 count=1 conv=notrunc status=none`;
    }),
  );

  // The file system is written straight into the partition (mke2fs -E offset): no loop device, no copy.
  await log.phase(
    `base image: ext4 from the tree into the partition (${recipe.diskSizeMiB - 1} MiB, mkfs.ext4 -d)`,
    () =>
      run(
        'mkfs.ext4',
        timeouts.filesystem,
        () =>
          sh({
            timeout: timeouts.filesystem,
          })`mkfs.ext4 -q -F -L slm-root -U ${uuid} ${recipe.mkfsOptions} -E ${`offset=${partStartBytes}`} -d ${tree} ${disk} ${`${partBytes / 1024}k`}`,
      ),
  );

  // extlinux has to see the mounted file system (it records where ldlinux.sys lies): the one loop mount.
  await log.phase('base image: extlinux (loop mount of the partition)', () =>
    run('extlinux', timeouts.bootloader, async () => {
      await mkdir(mnt, { recursive: true });
      try {
        await sh`mount -o ${`loop,offset=${partStartBytes},sizelimit=${partBytes}`} ${disk} ${mnt}`;
      } catch (error) {
        throw new TaskError(
          `cannot loop-mount the new file system to install extlinux: ${(error as { stderr?: string }).stderr?.trim() ?? error}`,
          {
            exitCode: ExitCode.environment,
            hint: 'the base image needs a loop device (modprobe loop; in a container: --privileged or --device /dev/loop-control)',
          },
        );
      }
      try {
        await sh`extlinux --install ${path.join(mnt, 'boot/extlinux')}`;
      } finally {
        await sh({ nothrow: true })`umount ${mnt}`;
      }
    }),
  );

  await log.phase('base image: qemu-img convert -c', () =>
    run(
      'qemu-img convert',
      timeouts.convert,
      () =>
        sh({
          timeout: timeouts.convert,
        })`qemu-img convert -c -O qcow2 -o compat=1.1 ${disk} ${path.join(work, 'disk.qcow2')}`,
    ),
  );
  await rm(disk);
  await removeTree(tree, log);
}
