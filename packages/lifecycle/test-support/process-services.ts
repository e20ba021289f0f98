// Test double for systemd (named as such: systemd is not PID 1 on these machines; the VM boot test
// runs the real units). The processes are real: the engine unit's ExecStart command line from the
// rendered unit file, with its EnvironmentFile, restarted on failure like Restart=on-failure with a
// start limit; nginx is the real nginx in the foreground. Only the supervision is simulated. As systemd, it
// runs the unit's ExecStartPre= commands before each start; the prompt-cache unit the engine Wants= is not
// run (src/prompt-cache.test.ts runs its commands).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AppliancePaths } from '@slm-copilot/context-schema';
import { TaskError } from '@slm-copilot/task-kit';
import { startNginx, type NginxProcess } from '@slm-copilot/testbed';
import { $ } from 'zx';
import type { UnitStatus } from '../src/engine-watch.js';
import type { ServiceControl } from '../src/services.js';

/** `KEY="value"` lines, as systemd reads an EnvironmentFile (the subset our renderer writes). */
function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9_]+)="?(.*?)"?$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

export interface ProcessServicesOptions {
  paths: AppliancePaths;
  /** The HTTPS port nginx must listen on before ensureStarted('nginx') returns. */
  httpsPort: number;
  /** RestartSec (the unit says 3 s; shorter here). */
  restartSecMs?: number;
  /** StartLimitBurst of the unit. */
  startLimitBurst?: number;
}

export class ProcessServices implements ServiceControl {
  calls: string[] = [];
  /** Everything the engine processes printed (stderr and stdout). */
  engineOutput = '';
  private child: ChildProcess | null = null;
  private state: Omit<UnitStatus, 'pids'> = {
    activeState: 'inactive',
    subState: 'dead',
    result: 'success',
    restarts: 0,
  };
  private generation = 0;
  private nginx: NginxProcess | null = null;

  constructor(private readonly opts: ProcessServicesOptions) {}

  async daemonReload() {
    this.calls.push('daemon-reload');
  }

  async restart(unit: string) {
    this.calls.push(`restart ${unit}`);
    if (unit === 'nginx') return this.reload(unit);
    await this.stopEngine();
    this.state = { activeState: 'activating', subState: 'start', result: 'success', restarts: 0 };
    await this.spawnEngine(unit, ++this.generation);
  }

  async ensureStarted(unit: string) {
    this.calls.push(`start ${unit}`);
    if (unit === 'nginx') {
      if (!this.nginx) {
        this.nginx = await startNginx({
          runDir: path.join(this.opts.paths.prefix, 'run/nginx'),
          include: `${path.join(this.opts.paths.nginx.confDir, 'conf.d')}/*.conf`,
          readyPort: this.opts.httpsPort,
        });
      }
      return;
    }
    if (!this.child) await this.restart(unit);
  }

  async reload(unit: string) {
    this.calls.push(`reload ${unit}`);
    if (unit === 'nginx' && this.nginx) await $({ quiet: true })`${this.nginx.baseCommand} -s reload`;
  }

  async isActive(unit: string) {
    return unit === 'nginx' ? this.nginx !== null : this.child !== null;
  }

  async unitStatus(): Promise<UnitStatus> {
    return { ...this.state, pids: this.child?.pid ? [this.child.pid] : [] };
  }

  /** The ExecStart command line and environment of the rendered unit, as systemd would run it. */
  private async command(unit: string): Promise<{ argv: string[]; env: Record<string, string> }> {
    const text = await readFile(path.join(this.opts.paths.systemdDir, unit), 'utf8');
    const argv = /^ExecStart=(.*)$/m.exec(text)![1]!.split(' ');
    const envFile = /^EnvironmentFile=(.*)$/m.exec(text)?.[1];
    for (const [, pre] of text.matchAll(/^ExecStartPre=(.*)$/gm)) {
      const [file, ...args] = pre!.split(' ');
      const r = spawnSync(file!, args, { stdio: 'pipe' });
      if (r.status !== 0) throw new TaskError(`ExecStartPre=${pre} failed: ${r.stderr?.toString().trim()}`);
    }
    return { argv, env: envFile ? parseEnvFile(await readFile(envFile, 'utf8')) : {} };
  }

  /** Type=exec: the start fails when the binary cannot be executed; afterwards failures restart it. */
  private async spawnEngine(unit: string, generation: number): Promise<void> {
    const { argv, env } = await this.command(unit);
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (this.engineOutput += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.engineOutput += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e) => {
        this.state = { ...this.state, activeState: 'failed', subState: 'failed', result: 'exit-code' };
        reject(new TaskError(`systemctl restart ${unit} failed: ${e.message}`));
      });
    });
    this.child = child;
    this.state = { ...this.state, activeState: 'active', subState: 'running' };
    child.once('exit', (code, signal) => {
      if (generation !== this.generation) return; // stopped on purpose
      this.child = null;
      if (code === 0) {
        this.state = { ...this.state, activeState: 'inactive', subState: 'dead', result: 'success' };
        return;
      }
      const result = signal ? 'signal' : 'exit-code';
      if (this.state.restarts + 1 >= (this.opts.startLimitBurst ?? 5)) {
        this.state = { ...this.state, activeState: 'failed', subState: 'failed', result: 'start-limit-hit' };
        return;
      }
      this.state = { ...this.state, activeState: 'activating', subState: 'auto-restart', result };
      setTimeout(() => {
        if (generation !== this.generation) return;
        this.state = { ...this.state, restarts: this.state.restarts + 1 };
        this.spawnEngine(unit, generation).catch(() => undefined);
      }, this.opts.restartSecMs ?? 300);
    });
  }

  private async stopEngine(): Promise<void> {
    this.generation++;
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }

  async stopAll(): Promise<void> {
    await this.stopEngine();
    await this.nginx?.stop();
    this.nginx = null;
  }
}
