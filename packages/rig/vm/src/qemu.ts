import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ExitCode, formatDuration, TaskError, type Logger } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { ensureHostTools, TOOLS } from './host-tools.js';
import { ensureSshKey, sshOptions, type SshKey } from './ssh.js';
import { defaultLogger, freePort, sleep, tail, withTimeout } from './util.js';

export interface BootOptions {
  /** Disk image (qcow2 or raw). With `overlay` (default) it is never written. */
  image: string;
  /** Boot a copy-on-write qcow2 overlay in `workDir` backed by `image` (default true). false: boot `image` itself, writable. */
  overlay?: boolean;
  /** ISO attached as an IDE CD-ROM (e.g. a CONTEXT CD). */
  cdrom?: string;
  /** Extra forwards guest port → host port on 127.0.0.1 (0 = any free port). SSH (22) is always forwarded. */
  forwards?: Record<number, number>;
  memoryMb?: number;
  cpus?: number;
  /** Serial console log (appended across reboots and restarts); default `<workDir>/serial.log`. */
  serialLog?: string;
  /** Where the overlay, QMP socket and serial log go; default a new temp dir (removed by `dispose()`). */
  workDir?: string;
  /** Key for `ssh()`; default the cached test key (`ensureSshKey()`). The guest must authorize it (e.g. SSH_PUBLIC_KEY on a CONTEXT CD). */
  sshKey?: SshKey;
  sshUser?: string;
  /** QEMU's -accel and -cpu: TCG (KVM does not work on our machines). */
  accel?: string;
  cpuModel?: string;
  /** Watchdog: QEMU is killed after this long whatever happens (default 60 min). */
  maxLifetimeMs?: number;
  log?: Logger;
  /** Extra QEMU arguments. */
  extraArgs?: string[];
}

export interface SshResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface SshOptions {
  /** Hard timeout: the ssh client is killed (default 120 s). */
  timeoutMs?: number;
  input?: string;
  /** Do not throw on a non-zero exit code. */
  nothrow?: boolean;
  /** Another key (to prove a key does NOT work, say). */
  key?: SshKey;
  user?: string;
}

export interface Vm {
  /** 127.0.0.1 port forwarded to the guest's 22. */
  readonly sshPort: number;
  /** guest port → 127.0.0.1 host port, SSH included. */
  readonly ports: Readonly<Record<number, number>>;
  readonly serialLog: string;
  /** The disk QEMU writes (the overlay unless `overlay: false`). */
  readonly disk: string;
  readonly workDir: string;
  readonly pid: number | undefined;
  /** Milliseconds from QEMU's start until an SSH command succeeded; throws (and kills QEMU) on timeout. */
  waitForSsh(timeoutMs?: number): Promise<number>;
  ssh(command: string, options?: SshOptions): Promise<SshResult>;
  scpTo(localPath: string, remotePath: string, options?: { timeoutMs?: number; recursive?: boolean }): Promise<void>;
  scpFrom(remotePath: string, localPath: string, options?: { timeoutMs?: number; recursive?: boolean }): Promise<void>;
  /** `systemctl reboot` in the guest, then waits until SSH answers with a new boot id. Returns the ms it took. */
  reboot(timeoutMs?: number): Promise<number>;
  /** Clean power-off (guest `systemctl poweroff`, else ACPI power button over QMP); QEMU is killed if it has not exited in time. */
  shutdown(timeoutMs?: number): Promise<void>;
  /** SIGKILL QEMU now. */
  kill(): Promise<void>;
  /** Shuts down and boots the same disk again, optionally with another CD (`null` = none). Call `waitForSsh()` after. */
  restart(options?: { cdrom?: string | null }): Promise<void>;
  /** Kills QEMU if running and removes `workDir` when bootVm created it. */
  dispose(): Promise<void>;
  serialText(): Promise<string>;
  readonly running: boolean;
}

/** QEMU processes still alive: killed if this Node process exits first, so no VM outlives its test. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

async function backingFormat(image: string): Promise<string> {
  const r = await $({ quiet: true, timeout: '60s' })`qemu-img info --output=json ${image}`;
  return String(JSON.parse(r.stdout).format);
}

/** Sends QMP commands over the unix socket; resolves when the last one is answered (or the socket closes). */
async function qmp(socket: string, commands: string[], timeoutMs = 5000): Promise<void> {
  await withTimeout(
    'QMP',
    timeoutMs,
    new Promise<void>((resolve, reject) => {
      const s = connect(socket);
      let buffer = '';
      let sent = 0;
      let answered = 0;
      s.on('error', reject);
      s.on('close', () => resolve());
      s.on('data', (d) => {
        buffer += d.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const line of lines) {
          if (line.includes('"QMP"') && sent === 0) {
            s.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
            sent = 1;
          } else if (line.includes('"return"') || line.includes('"error"')) {
            answered++;
            const next = commands[answered - 1];
            if (next !== undefined) s.write(`${JSON.stringify({ execute: next })}\n`);
            else {
              s.end();
              resolve();
            }
          }
        }
      });
    }),
  );
}

/**
 * Boots a VM under TCG with loopback-only user networking (`restrict=on`, forwards bound to 127.0.0.1),
 * the serial console captured to a file and a watchdog. The returned handle runs SSH/scp with the system
 * client (our key, no host key checking) and shuts the VM down, reboots it or swaps its CD.
 */
export async function bootVm(options: BootOptions): Promise<Vm> {
  const log = defaultLogger(options.log, 'vm');
  await ensureHostTools([TOOLS.qemu, TOOLS.qemuImg, TOOLS.ssh, TOOLS.sshKeygen], log);
  const ownWorkDir = options.workDir === undefined;
  const workDir = options.workDir ?? (await mkdtemp(path.join(tmpdir(), 'slm-vm-')));
  const serialLog = options.serialLog ?? path.join(workDir, 'serial.log');
  const qmpSocket = path.join(workDir, 'qmp.sock');
  const key = options.sshKey ?? (await ensureSshKey());
  const user = options.sshUser ?? 'root';
  const image = path.resolve(options.image);
  let disk = image;
  if (options.overlay ?? true) {
    disk = path.join(workDir, 'overlay.qcow2');
    await rm(disk, { force: true });
    await $({
      quiet: true,
      timeout: '60s',
    })`qemu-img create -q -f qcow2 -F ${await backingFormat(image)} -b ${image} ${disk}`;
  }
  const diskFormat = await backingFormat(disk);
  let cdrom = options.cdrom ? path.resolve(options.cdrom) : undefined;
  const wanted: Record<number, number> = { 22: 0, ...options.forwards };
  const ports: Record<number, number> = {};

  let child: ChildProcess | undefined;
  let exited: Promise<number | null> = Promise.resolve(null);
  let startedAt = 0;
  let stderr = '';
  let watchdog: NodeJS.Timeout | undefined;

  const args = (): string[] => {
    const hostfwd = Object.entries(ports).map(([guest, host]) => `hostfwd=tcp:127.0.0.1:${host}-:${guest}`);
    const a = [
      '-name',
      'slm-vm',
      '-nodefaults',
      '-no-user-config',
      '-machine',
      'pc',
      '-accel',
      options.accel ?? 'tcg,thread=multi',
      '-cpu',
      options.cpuModel ?? 'max',
      '-smp',
      String(options.cpus ?? 2),
      '-m',
      String(options.memoryMb ?? 1024),
      '-display',
      'none',
      '-vga',
      'none',
      '-chardev',
      `file,id=serial0,path=${serialLog},append=on`,
      '-serial',
      'chardev:serial0',
      '-qmp',
      `unix:${qmpSocket},server=on,wait=off`,
      '-drive',
      `if=none,id=hd0,file=${disk},format=${diskFormat},discard=unmap`,
      '-device',
      'virtio-blk-pci,drive=hd0,bootindex=0',
      '-netdev',
      ['user', 'id=net0', 'restrict=on', ...hostfwd].join(','),
      '-device',
      'virtio-net-pci,netdev=net0,romfile=',
      '-device',
      'virtio-rng-pci',
    ];
    if (cdrom)
      a.push(
        '-drive',
        `if=none,id=cd0,media=cdrom,readonly=on,format=raw,file=${cdrom}`,
        '-device',
        'ide-cd,drive=cd0,bus=ide.1,unit=0',
      );
    return [...a, ...(options.extraArgs ?? [])];
  };

  const start = async (): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      for (const [guest, host] of Object.entries(wanted)) ports[Number(guest)] = host || (await freePort());
      stderr = '';
      startedAt = performance.now();
      const c = spawn('qemu-system-x86_64', args(), { stdio: ['ignore', 'ignore', 'pipe'] });
      child = c;
      live.add(c);
      installExitHook();
      c.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      exited = new Promise((resolve) => {
        c.once('exit', (code, signal) => {
          live.delete(c);
          resolve(code ?? (signal ? 128 : null));
        });
        c.once('error', (e) => {
          stderr += String(e);
          live.delete(c);
          resolve(127);
        });
      });
      const lifetime = options.maxLifetimeMs ?? 60 * 60_000;
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        log.error(`VM watchdog: killing QEMU (pid ${c.pid}) after ${formatDuration(lifetime)}`);
        c.kill('SIGKILL');
      }, lifetime);
      watchdog.unref();
      // QEMU fails fast on bad arguments or a port taken meanwhile: give it a moment.
      const early = await Promise.race([exited, sleep(1500).then(() => 'running' as const)]);
      if (early === 'running') break;
      const retry = /host forwarding rule|Could not set up host forwarding/i.test(stderr) && attempt < 4;
      if (!retry)
        throw new TaskError(`QEMU exited at once (code ${early}): ${tail(stderr, 10)}`, {
          exitCode: ExitCode.environment,
        });
      log.warn('a forwarded port was taken; retrying with other ports');
    }
    log.info(
      `QEMU pid ${child?.pid}: ${path.basename(disk)}${cdrom ? ` + CD ${path.basename(cdrom)}` : ''}, ` +
        `${options.cpus ?? 2} vCPU ${options.memoryMb ?? 1024} MiB, ssh 127.0.0.1:${ports[22]}, serial ${serialLog}`,
    );
  };

  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  const serialText = () => readFile(serialLog, 'utf8').catch(() => '');

  const ssh = async (command: string, o: SshOptions = {}): Promise<SshResult> => {
    const timeoutMs = o.timeoutMs ?? 120_000;
    const r = await $({
      quiet: true,
      nothrow: true,
      timeout: timeoutMs,
      timeoutSignal: 'SIGKILL',
      input: o.input ?? '',
    })`ssh ${sshOptions(o.key ?? key)} -p ${String(ports[22])} ${`${o.user ?? user}@127.0.0.1`} -- ${command}`;
    const result = { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
    if (!o.nothrow && result.exitCode !== 0) {
      throw new TaskError(
        `ssh "${command}" exited ${result.exitCode}${r.signal ? ` (${r.signal}, timeout ${formatDuration(timeoutMs)}?)` : ''}: ${tail(r.stderr || r.stdout, 10)}`,
      );
    }
    return result;
  };

  const scp = async (from: string, to: string, o: { timeoutMs?: number; recursive?: boolean } = {}) => {
    const timeoutMs = o.timeoutMs ?? 300_000;
    const r = await $({
      quiet: true,
      nothrow: true,
      timeout: timeoutMs,
      timeoutSignal: 'SIGKILL',
    })`scp -q ${o.recursive ? ['-r'] : []} ${sshOptions(key)} -P ${String(ports[22])} ${from} ${to}`;
    if (r.exitCode !== 0)
      throw new TaskError(`scp ${from} ${to} failed (${r.exitCode ?? r.signal}): ${tail(r.stderr, 10)}`);
  };

  const kill = async () => {
    clearTimeout(watchdog);
    if (!running()) return;
    child?.kill('SIGKILL');
    await exited;
  };

  const failWithConsole = async (message: string): Promise<never> => {
    const serial = tail(await serialText(), 25);
    throw new TaskError(
      `${message}\n--- serial console (${serialLog}), last lines ---\n${serial}${stderr ? `\n--- QEMU stderr ---\n${tail(stderr, 10)}` : ''}`,
      {
        exitCode: ExitCode.failure,
      },
    );
  };

  const waitForSsh = async (timeoutMs = 15 * 60_000): Promise<number> => {
    const deadline = performance.now() + timeoutMs;
    let last = '';
    while (performance.now() < deadline) {
      if (!running())
        return failWithConsole(`QEMU exited (code ${child?.exitCode ?? child?.signalCode}) before SSH answered`);
      const r = await ssh('true', { nothrow: true, timeoutMs: 30_000 });
      if (r.exitCode === 0) {
        const ms = performance.now() - startedAt;
        log.info(`boot to SSH: ${formatDuration(ms)}`);
        return ms;
      }
      last = r.stderr.trim();
      await sleep(2000);
    }
    await kill();
    return failWithConsole(
      `SSH on 127.0.0.1:${ports[22]} did not answer within ${formatDuration(timeoutMs)} (QEMU killed; last ssh error: ${last || 'none'})`,
    );
  };

  const shutdown = async (timeoutMs = 180_000): Promise<void> => {
    clearTimeout(watchdog);
    if (!running()) return;
    const started = performance.now();
    // The connection drops as the guest powers off: a non-zero exit here is expected.
    await ssh('systemctl poweroff', { nothrow: true, timeoutMs: 30_000 });
    const halted = await Promise.race([
      exited.then(() => true),
      sleep(Math.max(5000, timeoutMs / 2)).then(() => false),
    ]);
    if (!halted && running()) {
      log.warn('guest did not power off over SSH; pressing the ACPI power button (QMP)');
      await qmp(qmpSocket, ['system_powerdown']).catch((e) => log.warn(`QMP: ${(e as Error).message}`));
      const halted2 = await Promise.race([
        exited.then(() => true),
        sleep(Math.max(5000, timeoutMs / 2)).then(() => false),
      ]);
      if (!halted2 && running()) {
        log.error(`QEMU still running after ${formatDuration(timeoutMs)}: killed`);
        await kill();
      }
    }
    log.info(`VM shut down in ${formatDuration(performance.now() - started)}`);
  };

  const reboot = async (timeoutMs = 15 * 60_000): Promise<number> => {
    const before = (await ssh('cat /proc/sys/kernel/random/boot_id')).stdout.trim();
    const started = performance.now();
    await ssh('systemctl reboot', { nothrow: true, timeoutMs: 30_000 });
    const deadline = started + timeoutMs;
    while (performance.now() < deadline) {
      if (!running()) return failWithConsole('QEMU exited during the reboot');
      const r = await ssh('cat /proc/sys/kernel/random/boot_id', { nothrow: true, timeoutMs: 30_000 });
      if (r.exitCode === 0 && r.stdout.trim() !== before) {
        const ms = performance.now() - started;
        log.info(`reboot to SSH: ${formatDuration(ms)}`);
        return ms;
      }
      await sleep(2000);
    }
    await kill();
    return failWithConsole(
      `the guest did not come back within ${formatDuration(timeoutMs)} after reboot (QEMU killed)`,
    );
  };

  const restart = async (o: { cdrom?: string | null } = {}): Promise<void> => {
    await shutdown();
    if (o.cdrom !== undefined) cdrom = o.cdrom === null ? undefined : path.resolve(o.cdrom);
    await start();
  };

  const dispose = async () => {
    await kill();
    if (ownWorkDir) await rm(workDir, { recursive: true, force: true });
  };

  await start();

  return {
    get sshPort() {
      return ports[22] ?? 0;
    },
    get ports() {
      return { ...ports };
    },
    serialLog,
    disk,
    workDir,
    get pid() {
      return child?.pid;
    },
    get running() {
      return running();
    },
    waitForSsh,
    ssh,
    scpTo: (local, remote, o) => scp(local, `${user}@127.0.0.1:${remote}`, o),
    scpFrom: (remote, local, o) => scp(`${user}@127.0.0.1:${remote}`, local, o),
    reboot,
    shutdown,
    kill,
    restart,
    dispose,
    serialText,
  };
}
