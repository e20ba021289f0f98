import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { exists, ExitCode, TaskError } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { vmCacheDir } from './util.js';

export interface SshKey {
  /** Path of the private key file (0600). */
  privateKeyFile: string;
  /** One line: `ssh-ed25519 AAAA… comment`. */
  publicKey: string;
}

/**
 * An ed25519 key pair without passphrase, generated once (atomically) at `file` / `file.pub`.
 * Default: `<cache>/vm/keys/slm-vm-test_ed25519` — a test key that only ever reaches loopback-only VMs.
 */
export async function ensureSshKey(
  file = path.join(vmCacheDir(), 'keys', 'slm-vm-test_ed25519'),
  comment = 'slm-vm-test',
): Promise<SshKey> {
  if (!(await exists(file)) || !(await exists(`${file}.pub`))) {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp-${process.pid}-${Date.now().toString(36)}`;
    await rm(tmp, { force: true });
    await $({ quiet: true, timeout: '30s' })`ssh-keygen -q -t ed25519 -N ${''} -C ${comment} -f ${tmp}`;
    await rename(`${tmp}.pub`, `${file}.pub`);
    await rename(tmp, file);
  }
  return { privateKeyFile: file, publicKey: (await readFile(`${file}.pub`, 'utf8')).trim() };
}

/** A fresh key pair in `dir` (for one image build: its public half goes on the cidata seed). */
export async function generateSshKey(
  dir: string,
  name = 'build_ed25519',
  comment = 'slm-copilot-image-build',
): Promise<SshKey> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, name);
  if (await exists(file)) throw new TaskError(`refusing to overwrite ${file}`, { exitCode: ExitCode.failure });
  return ensureSshKey(file, comment);
}

/** Options every ssh/scp call uses: our key only, no host key checks (throw-away loopback VMs), no prompts. */
export function sshOptions(key: SshKey, connectTimeoutS = 10): string[] {
  return [
    '-i',
    key.privateKeyFile,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'IdentityAgent=none',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'BatchMode=yes',
    '-o',
    'PasswordAuthentication=no',
    '-o',
    `ConnectTimeout=${connectTimeoutS}`,
    '-o',
    'ServerAliveInterval=5',
    '-o',
    'ServerAliveCountMax=6',
    '-o',
    'ConnectionAttempts=1',
  ];
}
