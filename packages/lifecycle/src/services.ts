import { readFile } from 'node:fs/promises';
import { sh, TaskError, ExitCode, type Logger } from '@slm-copilot/task-kit';
import type { UnitStatus } from './engine-watch.js';

/** Process control, in one place: everything that starts, stops or reloads a service goes through here. */
export interface ServiceControl {
  daemonReload(): Promise<void>;
  /** Enables and (re)starts a unit. */
  restart(unit: string): Promise<void>;
  /** Enables and starts a unit if it is not running; leaves a running one alone. */
  ensureStarted(unit: string): Promise<void>;
  reload(unit: string): Promise<void>;
  isActive(unit: string): Promise<boolean>;
  /** State, restart count and processes of a unit; without it bootstrap can only wait for /readyz. */
  unitStatus?(unit: string): Promise<UnitStatus>;
  /** Stops and disables a unit (a role that must not run it); one that is not installed is left alone. */
  stopAndDisable?(unit: string): Promise<void>;
}

/** `systemctl show` output (`Key=value` lines) as a record. */
export function parseShow(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** The unit's processes from its cgroup (v2, as on Debian 12 and Ubuntu 24.04), else its main PID. */
async function unitPids(show: Record<string, string>, cgroupRoot = '/sys/fs/cgroup'): Promise<number[]> {
  const main = Number(show.MainPID ?? 0);
  const cgroup = show.ControlGroup ? `${cgroupRoot}${show.ControlGroup}/cgroup.procs` : null;
  const procs = cgroup ? await readFile(cgroup, 'utf8').catch(() => '') : '';
  const pids = procs
    .split('\n')
    .map(Number)
    .filter((p) => p > 0);
  if (main > 0 && !pids.includes(main)) pids.unshift(main);
  return pids;
}

async function systemdUnitStatus(unit: string): Promise<UnitStatus> {
  const props = ['ActiveState', 'SubState', 'Result', 'NRestarts', 'MainPID', 'ControlGroup'].flatMap((p) => ['-p', p]);
  const r = await sh({ nothrow: true })`systemctl show ${unit} ${props}`;
  const show = parseShow(r.stdout);
  return {
    activeState: show.ActiveState ?? 'unknown',
    subState: show.SubState ?? 'unknown',
    result: show.Result ?? 'unknown',
    restarts: Number(show.NRestarts ?? 0) || 0,
    pids: await unitPids(show),
  };
}

async function systemctl(args: string[], log: Logger): Promise<void> {
  const r = await sh({ nothrow: true, timeout: '15m' })`systemctl ${args}`;
  if (r.exitCode !== 0) {
    const unit = args.at(-1) ?? '';
    const journal = await sh({ nothrow: true })`journalctl -u ${unit} -n 20 --no-pager -o cat`;
    throw new TaskError(
      `systemctl ${args.join(' ')} failed (exit ${r.exitCode}): ${r.stderr.trim()}\n${journal.stdout.trim()}`,
      {
        exitCode: ExitCode.environment,
        hint: `journalctl -u ${unit}`,
      },
    );
  }
  log.debug(`systemctl ${args.join(' ')}`);
}

export function systemdControl(log: Logger): ServiceControl {
  return {
    daemonReload: () => systemctl(['daemon-reload'], log),
    restart: async (unit) => {
      // a unit that hit its start limit (a crash loop) refuses a restart until its failure is reset
      await sh({ nothrow: true })`systemctl reset-failed ${unit}`;
      await systemctl(['enable', '--quiet', unit], log);
      await systemctl(['restart', unit], log);
      log.info(`restarted ${unit}`);
    },
    ensureStarted: async (unit) => {
      await systemctl(['enable', '--quiet', unit], log);
      await systemctl(['start', unit], log);
    },
    reload: async (unit) => {
      await systemctl(['reload', unit], log);
      log.info(`reloaded ${unit}`);
    },
    isActive: async (unit) => (await sh({ nothrow: true })`systemctl is-active --quiet ${unit}`).exitCode === 0,
    unitStatus: systemdUnitStatus,
    stopAndDisable: async (unit) => {
      const r = await sh({ nothrow: true })`systemctl disable --now --quiet ${unit}`;
      if (r.exitCode === 0) log.info(`stopped and disabled ${unit}`);
      else if (!/does not exist|not loaded|not found/i.test(r.stderr))
        log.warn(`systemctl disable --now ${unit} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
    },
  };
}
