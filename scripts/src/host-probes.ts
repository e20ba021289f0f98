/**
 * What the preflight asks of this machine: commands, KVM, free disk, RAM, root. Effects only; the
 * preflight (./preflight.ts) decides what each profile needs, and tests replace these probes.
 */
import { spawn } from 'node:child_process';
import { constants as fsConstants, existsSync } from 'node:fs';
import { access, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { commandExists, exists, gatherHostFacts } from '@slm-copilot/task-kit';

export interface KvmProbe {
  /** /dev/kvm is readable and writable and a QEMU guest ran under KVM. */
  usable: boolean;
  detail: string;
  /** Why it is not usable, when it can be fixed on this host (permissions, QEMU missing). */
  fix?: string;
}

export interface HostProbes {
  commandExists(command: string): Promise<boolean>;
  pathExists(file: string): Promise<boolean>;
  kvm(): Promise<KvmProbe>;
  /** Free bytes for an unprivileged user on the filesystem of `dir` (or its nearest existing ancestor). */
  freeSpace(dir: string): Promise<{ free: number; dev: number; at: string }>;
  memory(): Promise<{ total: number; available: number }>;
  isRoot(): boolean;
}

const sudo = () => (process.getuid?.() === 0 ? '' : 'sudo ');

/** A guest with no disk: SeaBIOS runs and waits for a boot device. Still running after 2.5 s = KVM runs guests. */
function runKvmGuest(): Promise<{ running: boolean; output: string }> {
  const args = ['-accel', 'kvm', '-machine', 'pc', '-cpu', 'host', '-m', '32', '-nodefaults', '-no-user-config'];
  args.push('-display', 'none', '-serial', 'none', '-monitor', 'none', '-no-reboot');
  return new Promise((resolve) => {
    const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ running: true, output });
    }, 2500);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ running: false, output: error.message });
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve({ running: false, output });
    });
  });
}

/** Whether this machine can run KVM guests: /dev/kvm, its permissions, then a real QEMU guest for 2.5 s. */
export async function probeKvm(): Promise<KvmProbe> {
  if (!existsSync('/dev/kvm'))
    return { usable: false, detail: '/dev/kvm does not exist: this machine cannot run KVM guests' };
  try {
    await access('/dev/kvm', fsConstants.R_OK | fsConstants.W_OK);
  } catch {
    return {
      usable: false,
      detail: '/dev/kvm exists but is not readable and writable by this user',
      fix: `${sudo()}usermod -aG kvm "$USER", then log in again`,
    };
  }
  if (!(await commandExists('qemu-system-x86_64'))) {
    return {
      usable: false,
      detail: '/dev/kvm is readable and writable; cannot try a guest without qemu-system-x86_64',
      fix: `${sudo()}apt-get install -y qemu-system-x86`,
    };
  }
  const probe = await runKvmGuest();
  if (probe.running && !/error|fail/i.test(probe.output)) {
    return { usable: true, detail: '/dev/kvm is readable and writable, and a QEMU guest ran under KVM' };
  }
  const reason = probe.output.trim().split('\n')[0] || 'QEMU exited at once';
  return { usable: false, detail: `/dev/kvm is present but cannot run guests (${reason})` };
}

export async function existingAncestor(dir: string): Promise<string> {
  let current = path.resolve(dir);
  for (;;) {
    const isDir = await stat(current).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (isDir) return current;
    const parent = path.dirname(current);
    if (parent === current) return current;
    current = parent;
  }
}

let kvmOnce: Promise<KvmProbe> | undefined;

/** The real probes (the KVM guest runs once per process). */
export const hostProbes: HostProbes = {
  commandExists,
  pathExists: exists,
  kvm: () => (kvmOnce ??= probeKvm()),
  freeSpace: async (dir) => {
    const at = await existingAncestor(dir);
    const [s, st] = await Promise.all([statfs(at), stat(at)]);
    return { free: s.bavail * s.bsize, dev: st.dev, at };
  },
  memory: async () => {
    const facts = await gatherHostFacts();
    return { total: facts.memTotalBytes, available: facts.memAvailableBytes };
  },
  isRoot: () => process.getuid?.() === 0,
};
