import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ExitCode, formatDuration, TaskError, type Logger } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { ensureHostTools, TOOLS } from './host-tools.js';
import { imageFormat, qemuArgs, qmp, type GuestForwardCommand } from './qemu-args.js';
import { QemuProcess } from './qemu-process.js';
import { ensureSshKey, sshOptions, type SshKey } from './ssh.js';
import { defaultLogger, sleep, tail } from './util.js';

export interface BootOptions {
  /** Disk image (qcow2 or raw). With `overlay` (default) it is never written. */
  image: string;
  /**
   * Boot a copy-on-write qcow2 overlay in `workDir` backed by `image` (default true).
   * false: boot `image` itself, writable.
   */
  overlay?: boolean;
  /** ISO attached as an IDE CD-ROM (e.g. a CONTEXT CD). */
  cdrom?: string;
  /** Extra forwards guest port → host port on 127.0.0.1 (0 = any free port). SSH (22) is always forwarded. */
  forwards?: Record<number, number>;
  /**
   * The other way: the guest's connections to address:port reach 127.0.0.1:hostPort on the host (e.g. a
   * test double of a service the VM calls, such as OneGate), through QEMU's user network, nothing else.
   */
  guestForwards?: { address: string; port: number; hostPort: number }[];
  memoryMb?: number;
  cpus?: number;
  /** Serial console log (appended across reboots and restarts); default `<workDir>/serial.log`. */
  serialLog?: string;
  /** Where the overlay, QMP socket and serial log go; default a new temp dir (removed by `dispose()`). */
  workDir?: string;
  /**
   * Key for `ssh()`; default the cached test key (`ensureSshKey()`). The guest must authorize it
   * (e.g. SSH_PUBLIC_KEY on a CONTEXT CD).
   */
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

type CopyOptions = { timeoutMs?: number; recursive?: boolean };

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
  scpTo(localPath: string, remotePath: string, options?: CopyOptions): Promise<void>;
  scpFrom(remotePath: string, localPath: string, options?: CopyOptions): Promise<void>;
  /** `systemctl reboot` in the guest, then waits until SSH answers with a new boot id. Returns the ms it took. */
  reboot(timeoutMs?: number): Promise<number>;
  /**
   * Clean power-off (guest `systemctl poweroff`, else ACPI power button over QMP); QEMU is killed if it
   * has not exited in time.
   */
  shutdown(timeoutMs?: number): Promise<void>;
  /** SIGKILL QEMU now. */
  kill(): Promise<void>;
  /**
   * Shuts down and boots the same disk again, optionally with another CD (`null` = none). Call
   * `waitForSsh()` after.
   */
  restart(options?: { cdrom?: string | null }): Promise<void>;
  /**
   * Swaps the CD of the RUNNING VM, as OpenNebula's "Update Configuration" swaps the CONTEXT CD: QMP's
   * blockdev-change-medium, what the monitor's `change cd0 <iso>` runs. The guest sees a media change;
   * `restart()` keeps the new CD. The VM must have been booted with a CD.
   */
  changeCdrom(iso: string, timeoutMs?: number): Promise<void>;
  /** Kills QEMU if running and removes `workDir` when bootVm created it. */
  dispose(): Promise<void>;
  serialText(): Promise<string>;
  readonly running: boolean;
}

/** What bootVm prepared: the disk to boot and where the VM's files go. */
interface Prepared {
  options: BootOptions;
  log: Logger;
  workDir: string;
  ownWorkDir: boolean;
  serialLog: string;
  qmpSocket: string;
  disk: string;
  diskFormat: string;
  key: SshKey;
  guestForwards: GuestForwardCommand[];
}

/** Copies one connection between its stdin/stdout (QEMU's side) and a TCP port on the host. */
const RELAY_SCRIPT = `const [host, port] = process.argv.slice(2);
const socket = require('node:net').connect(Number(port), host);
socket.on('error', () => process.exit(1));
process.stdin.pipe(socket).pipe(process.stdout);
`;

/** Writes the relay into the VM's directory and gives QEMU one command per forward. */
async function guestForwardCommands(workDir: string, forwards: BootOptions['guestForwards']) {
  if (!forwards?.length) return [];
  const relay = path.join(workDir, 'guest-relay.cjs');
  await writeFile(relay, RELAY_SCRIPT, { mode: 0o600 });
  return forwards.map((f) => ({
    address: f.address,
    port: f.port,
    command: `${process.execPath} ${relay} 127.0.0.1 ${f.hostPort}`,
  }));
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
  const key = options.sshKey ?? (await ensureSshKey());
  const image = path.resolve(options.image);
  let disk = image;
  if (options.overlay ?? true) {
    disk = path.join(workDir, 'overlay.qcow2');
    await rm(disk, { force: true });
    const format = await imageFormat(image);
    await $({ quiet: true, timeout: '60s' })`qemu-img create -q -f qcow2 -F ${format} -b ${image} ${disk}`;
  }
  const vm = new BootedVm({
    options,
    log,
    workDir,
    ownWorkDir,
    serialLog: options.serialLog ?? path.join(workDir, 'serial.log'),
    qmpSocket: path.join(workDir, 'qmp.sock'),
    disk,
    diskFormat: await imageFormat(disk),
    key,
    guestForwards: await guestForwardCommands(workDir, options.guestForwards),
  });
  await vm.start();
  return vm;
}

/** Methods are bound (arrow properties): callers may pass `vm.ssh` around as before. */
class BootedVm implements Vm {
  readonly serialLog: string;
  readonly disk: string;
  readonly workDir: string;
  private readonly qemu: QemuProcess;
  private readonly log: Logger;
  private readonly user: string;
  private cdrom: string | undefined;

  constructor(private readonly p: Prepared) {
    this.serialLog = p.serialLog;
    this.disk = p.disk;
    this.workDir = p.workDir;
    this.log = p.log;
    this.user = p.options.sshUser ?? 'root';
    this.cdrom = p.options.cdrom ? path.resolve(p.options.cdrom) : undefined;
    const o = p.options;
    this.qemu = new QemuProcess({
      log: p.log,
      wanted: { 22: 0, ...o.forwards },
      maxLifetimeMs: o.maxLifetimeMs ?? 60 * 60_000,
      args: (ports) =>
        qemuArgs({
          accel: o.accel ?? 'tcg,thread=multi',
          cpuModel: o.cpuModel ?? 'max',
          cpus: o.cpus ?? 2,
          memoryMb: o.memoryMb ?? 1024,
          serialLog: p.serialLog,
          qmpSocket: p.qmpSocket,
          disk: p.disk,
          diskFormat: p.diskFormat,
          cdrom: this.cdrom,
          ports,
          guestForwards: p.guestForwards,
          extraArgs: o.extraArgs ?? [],
        }),
    });
  }

  get sshPort(): number {
    return this.qemu.ports[22] ?? 0;
  }
  get ports(): Readonly<Record<number, number>> {
    return { ...this.qemu.ports };
  }
  get pid(): number | undefined {
    return this.qemu.child?.pid;
  }
  get running(): boolean {
    return this.qemu.running;
  }

  start = async (): Promise<void> => {
    await this.qemu.start();
    const o = this.p.options;
    this.log.info(
      `QEMU pid ${this.pid}: ${path.basename(this.disk)}${this.cdrom ? ` + CD ${path.basename(this.cdrom)}` : ''}, ` +
        `${o.cpus ?? 2} vCPU ${o.memoryMb ?? 1024} MiB, ssh 127.0.0.1:${this.sshPort}, serial ${this.serialLog}`,
    );
  };

  serialText = (): Promise<string> => readFile(this.serialLog, 'utf8').catch(() => '');

  ssh = async (command: string, o: SshOptions = {}): Promise<SshResult> => {
    const timeoutMs = o.timeoutMs ?? 120_000;
    const target = `${o.user ?? this.user}@127.0.0.1`;
    const r = await $({
      quiet: true,
      nothrow: true,
      timeout: timeoutMs,
      timeoutSignal: 'SIGKILL',
      input: o.input ?? '',
    })`ssh ${sshOptions(o.key ?? this.p.key)} -p ${String(this.sshPort)} ${target} -- ${command}`;
    const result = { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
    if (!o.nothrow && result.exitCode !== 0) {
      const signal = r.signal ? ` (${r.signal}, timeout ${formatDuration(timeoutMs)}?)` : '';
      throw new TaskError(`ssh "${command}" exited ${result.exitCode}${signal}: ${tail(r.stderr || r.stdout, 10)}`);
    }
    return result;
  };

  private scp = async (from: string, to: string, o: CopyOptions = {}): Promise<void> => {
    const timeoutMs = o.timeoutMs ?? 300_000;
    const r = await $({
      quiet: true,
      nothrow: true,
      timeout: timeoutMs,
      timeoutSignal: 'SIGKILL',
    })`scp -q ${o.recursive ? ['-r'] : []} ${sshOptions(this.p.key)} -P ${String(this.sshPort)} ${from} ${to}`;
    if (r.exitCode !== 0)
      throw new TaskError(`scp ${from} ${to} failed (${r.exitCode ?? r.signal}): ${tail(r.stderr, 10)}`);
  };

  scpTo = (local: string, remote: string, o?: CopyOptions) => this.scp(local, `${this.user}@127.0.0.1:${remote}`, o);
  scpFrom = (remote: string, local: string, o?: CopyOptions) => this.scp(`${this.user}@127.0.0.1:${remote}`, local, o);

  kill = (): Promise<void> => this.qemu.kill();

  private failWithConsole = async (message: string): Promise<never> => {
    const serial = tail(await this.serialText(), 25);
    const stderr = this.qemu.stderr ? `\n--- QEMU stderr ---\n${tail(this.qemu.stderr, 10)}` : '';
    throw new TaskError(`${message}\n--- serial console (${this.serialLog}), last lines ---\n${serial}${stderr}`, {
      exitCode: ExitCode.failure,
    });
  };

  waitForSsh = async (timeoutMs = 15 * 60_000): Promise<number> => {
    const deadline = performance.now() + timeoutMs;
    let last = '';
    while (performance.now() < deadline) {
      if (!this.running) {
        const c = this.qemu.child;
        return this.failWithConsole(`QEMU exited (code ${c?.exitCode ?? c?.signalCode}) before SSH answered`);
      }
      const r = await this.ssh('true', { nothrow: true, timeoutMs: 30_000 });
      if (r.exitCode === 0) {
        const ms = performance.now() - this.qemu.startedAt;
        this.log.info(`boot to SSH: ${formatDuration(ms)}`);
        return ms;
      }
      last = r.stderr.trim();
      await sleep(2000);
    }
    await this.kill();
    return this.failWithConsole(
      `SSH on 127.0.0.1:${this.sshPort} did not answer within ${formatDuration(timeoutMs)} ` +
        `(QEMU killed; last ssh error: ${last || 'none'})`,
    );
  };

  /** true when QEMU exited within `ms`. */
  private haltsWithin = (ms: number): Promise<boolean> =>
    Promise.race([this.qemu.exited.then(() => true), sleep(ms).then(() => false)]);

  shutdown = async (timeoutMs = 180_000): Promise<void> => {
    this.qemu.disarm();
    if (!this.running) return;
    const started = performance.now();
    // The connection drops as the guest powers off: a non-zero exit here is expected.
    await this.ssh('systemctl poweroff', { nothrow: true, timeoutMs: 30_000 });
    const wait = Math.max(5000, timeoutMs / 2);
    if (!(await this.haltsWithin(wait)) && this.running) {
      this.log.warn('guest did not power off over SSH; pressing the ACPI power button (QMP)');
      await qmp(this.p.qmpSocket, ['system_powerdown']).catch((e) => this.log.warn(`QMP: ${(e as Error).message}`));
      if (!(await this.haltsWithin(wait)) && this.running) {
        this.log.error(`QEMU still running after ${formatDuration(timeoutMs)}: killed`);
        await this.kill();
      }
    }
    this.log.info(`VM shut down in ${formatDuration(performance.now() - started)}`);
  };

  reboot = async (timeoutMs = 15 * 60_000): Promise<number> => {
    const bootId = 'cat /proc/sys/kernel/random/boot_id';
    const before = (await this.ssh(bootId)).stdout.trim();
    const started = performance.now();
    await this.ssh('systemctl reboot', { nothrow: true, timeoutMs: 30_000 });
    const deadline = started + timeoutMs;
    while (performance.now() < deadline) {
      if (!this.running) return this.failWithConsole('QEMU exited during the reboot');
      const r = await this.ssh(bootId, { nothrow: true, timeoutMs: 30_000 });
      if (r.exitCode === 0 && r.stdout.trim() !== before) {
        const ms = performance.now() - started;
        this.log.info(`reboot to SSH: ${formatDuration(ms)}`);
        return ms;
      }
      await sleep(2000);
    }
    await this.kill();
    return this.failWithConsole(
      `the guest did not come back within ${formatDuration(timeoutMs)} after reboot (QEMU killed)`,
    );
  };

  restart = async (o: { cdrom?: string | null } = {}): Promise<void> => {
    await this.shutdown();
    if (o.cdrom !== undefined) this.cdrom = o.cdrom === null ? undefined : path.resolve(o.cdrom);
    await this.start();
  };

  changeCdrom = async (iso: string, timeoutMs = 60_000): Promise<void> => {
    const filename = path.resolve(iso);
    const started = performance.now();
    for (;;) {
      // udev's cdrom_id locks the tray of a drive with a medium; QEMU then asks the guest to eject (udev
      // does) and refuses: ask again; past half the time, force the tray open as a management tool may
      const force = performance.now() - started > timeoutMs / 2;
      const args = { device: 'cd0', filename, format: 'raw', force };
      const [reply] = await qmp(this.p.qmpSocket, [{ execute: 'blockdev-change-medium', arguments: args }]);
      if (reply && !reply.error) break;
      const why = reply?.error?.desc ?? 'no answer';
      if (!/locked/i.test(why) || performance.now() - started > timeoutMs)
        throw new TaskError(`QMP blockdev-change-medium cd0 ${filename}: ${why}`, { exitCode: ExitCode.failure });
      await sleep(2000);
    }
    this.cdrom = filename;
    this.log.info(
      `CD swapped in the running VM: ${path.basename(filename)} (${formatDuration(performance.now() - started)})`,
    );
  };

  dispose = async (): Promise<void> => {
    await this.kill();
    if (this.p.ownWorkDir) await rm(this.workDir, { recursive: true, force: true });
  };
}
