// The base image's recipe: the data that decides its bytes, and the hash of it that is its cache key.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashParts, TaskError } from '@slm-copilot/task-kit';

/** Files of the base image that live in this package's `guest/` directory. */
export const GUEST_DIR = fileURLToPath(new URL('../guest/', import.meta.url));

/** Bump when the build steps (base-image-steps.ts) change in a way the recipe's data does not show. */
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
      text:
        'source /etc/network/interfaces.d/*\n\n' +
        'auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n',
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

/** A guest file's content: its file in `guest/`, or its literal text. */
export async function fileText(f: GuestFile): Promise<string> {
  if (f.text !== undefined) return f.text;
  if (f.from) return readFile(path.join(GUEST_DIR, f.from), 'utf8');
  throw new TaskError(`internal: guest file ${f.path} has neither text nor from`);
}

/** The cache key: a hash of the recipe data, every guest file's content and the build steps' version. */
export async function recipeHash(recipe: BaseImageRecipe = defaultRecipe): Promise<string> {
  const texts = await Promise.all(recipe.files.map(fileText));
  return hashParts([BUILD_STEPS_VERSION, JSON.stringify(recipe), ...texts], 16);
}
