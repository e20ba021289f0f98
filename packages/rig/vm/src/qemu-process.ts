// One QEMU process at a time for a VM: start (retrying when a forwarded port was taken meanwhile), a
// watchdog, kill; killed when this Node process exits first, so no VM outlives its test.
import { spawn, type ChildProcess } from 'node:child_process';
import { ExitCode, formatDuration, freePort, reapOnExit, TaskError, type Logger } from '@slm-copilot/task-kit';
import { sleep, tail } from './util.js';

export interface QemuProcessOptions {
  log: Logger;
  /** guest port → wanted host port (0 = any free port, chosen at each start). */
  wanted: Readonly<Record<number, number>>;
  /** The command line for the ports chosen. */
  args: (ports: Readonly<Record<number, number>>) => string[];
  /** Watchdog: QEMU is killed after this long whatever happens. */
  maxLifetimeMs: number;
}

export class QemuProcess {
  /** guest port → 127.0.0.1 host port of the current (or last) start. */
  readonly ports: Record<number, number> = {};
  child: ChildProcess | undefined;
  /** Resolves with QEMU's exit code (128 when killed by a signal, 127 when it could not start). */
  exited: Promise<number | null> = Promise.resolve(null);
  startedAt = 0;
  stderr = '';
  private watchdog: NodeJS.Timeout | undefined;

  constructor(private readonly options: QemuProcessOptions) {}

  get running(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** Starts QEMU; QEMU fails fast on bad arguments or a port taken meanwhile, so it gets a moment first. */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      for (const [guest, host] of Object.entries(this.options.wanted))
        this.ports[Number(guest)] = host || (await freePort());
      this.spawnOnce();
      const early = await Promise.race([this.exited, sleep(1500).then(() => 'running' as const)]);
      if (early === 'running') return;
      const retry = /host forwarding rule|Could not set up host forwarding/i.test(this.stderr) && attempt < 4;
      if (!retry)
        throw new TaskError(`QEMU exited at once (code ${early}): ${tail(this.stderr, 10)}`, {
          exitCode: ExitCode.environment,
        });
      this.options.log.warn('a forwarded port was taken; retrying with other ports');
    }
  }

  private spawnOnce(): void {
    this.stderr = '';
    this.startedAt = performance.now();
    const c = spawn('qemu-system-x86_64', this.options.args(this.ports), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = c;
    const unregister = reapOnExit(() => c.kill('SIGKILL'));
    c.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((resolve) => {
      c.once('exit', (code, signal) => {
        unregister();
        resolve(code ?? (signal ? 128 : null));
      });
      c.once('error', (e) => {
        this.stderr += String(e);
        unregister();
        resolve(127);
      });
    });
    const lifetime = this.options.maxLifetimeMs;
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      this.options.log.error(`VM watchdog: killing QEMU (pid ${c.pid}) after ${formatDuration(lifetime)}`);
      c.kill('SIGKILL');
    }, lifetime);
    this.watchdog.unref();
  }

  /** Stops the watchdog (a clean shutdown or a kill follows). */
  disarm(): void {
    clearTimeout(this.watchdog);
  }

  /** SIGKILL now, and wait until QEMU is gone. */
  async kill(): Promise<void> {
    this.disarm();
    if (!this.running) return;
    this.child?.kill('SIGKILL');
    await this.exited;
  }
}
