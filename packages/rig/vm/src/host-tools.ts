import { commandExists, ExitCode, TaskError, type Logger } from '@slm-copilot/task-kit';
import { $ } from 'zx';

/** A command this package runs on the host, and the Debian package that provides it. */
export interface HostTool {
  command: string;
  aptPackage: string;
}

export const TOOLS = {
  mmdebstrap: { command: 'mmdebstrap', aptPackage: 'mmdebstrap' },
  qemu: { command: 'qemu-system-x86_64', aptPackage: 'qemu-system-x86' },
  qemuImg: { command: 'qemu-img', aptPackage: 'qemu-utils' },
  extlinux: { command: 'extlinux', aptPackage: 'extlinux' },
  syslinuxMbr: { command: '/usr/lib/syslinux/mbr/mbr.bin', aptPackage: 'syslinux-common' },
  mkfs: { command: 'mkfs.ext4', aptPackage: 'e2fsprogs' },
  sfdisk: { command: 'sfdisk', aptPackage: 'fdisk' },
  losetup: { command: 'losetup', aptPackage: 'mount' },
  xorriso: { command: 'xorriso', aptPackage: 'xorriso' },
  packer: { command: 'packer', aptPackage: 'packer' },
  ssh: { command: 'ssh', aptPackage: 'openssh-client' },
  sshKeygen: { command: 'ssh-keygen', aptPackage: 'openssh-client' },
  flock: { command: 'flock', aptPackage: 'util-linux' },
} as const satisfies Record<string, HostTool>;

async function present(tool: HostTool): Promise<boolean> {
  if (tool.command.startsWith('/'))
    return (await $({ nothrow: true, quiet: true })`test -e ${tool.command}`).exitCode === 0;
  return commandExists(tool.command);
}

/**
 * Makes sure the host commands exist: as root, missing ones are installed with apt-get (idempotent);
 * otherwise a TaskError names the exact `sudo apt-get install` line.
 */
export async function ensureHostTools(tools: readonly HostTool[], log?: Logger): Promise<void> {
  const missing: HostTool[] = [];
  for (const t of tools) if (!(await present(t))) missing.push(t);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((t) => t.aptPackage))];
  if (process.getuid?.() !== 0) {
    throw new TaskError(`missing host tools: ${missing.map((t) => t.command).join(', ')}`, {
      exitCode: ExitCode.environment,
      hint: `sudo apt-get update && sudo apt-get install -y --no-install-recommends ${packages.join(' ')}`,
    });
  }
  log?.info(`installing host packages: ${packages.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    $({ env, quiet: true, nothrow: true, timeout: '15m' })`apt-get install -y -qq --no-install-recommends ${packages}`;
  let r = await install();
  if (r.exitCode !== 0) {
    await $({ env, quiet: true, nothrow: true, timeout: '10m' })`apt-get update -qq`;
    r = await install();
  }
  if (r.exitCode !== 0) {
    throw new TaskError(
      `apt-get install ${packages.join(' ')} failed: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`,
      {
        exitCode: ExitCode.environment,
      },
    );
  }
  for (const t of missing) {
    if (!(await present(t)))
      throw new TaskError(`${t.command} still missing after installing ${t.aptPackage}`, {
        exitCode: ExitCode.environment,
      });
  }
}
