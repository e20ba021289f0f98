import { sh, TaskError, ExitCode, type Logger } from '@slm-copilot/task-kit';

/** Process control, in one place: everything that starts, stops or reloads a service goes through here. */
export interface ServiceControl {
  daemonReload(): Promise<void>;
  /** Enables and (re)starts a unit. */
  restart(unit: string): Promise<void>;
  /** Enables and starts a unit if it is not running; leaves a running one alone. */
  ensureStarted(unit: string): Promise<void>;
  reload(unit: string): Promise<void>;
  isActive(unit: string): Promise<boolean>;
}

async function systemctl(args: string[], log: Logger): Promise<void> {
  const r = await sh({ nothrow: true, timeout: '15m' })`systemctl ${args}`;
  if (r.exitCode !== 0) {
    const unit = args.at(-1) ?? '';
    const journal = await sh({ nothrow: true })`journalctl -u ${unit} -n 20 --no-pager -o cat`;
    throw new TaskError(`systemctl ${args.join(' ')} failed (exit ${r.exitCode}): ${r.stderr.trim()}\n${journal.stdout.trim()}`, {
      exitCode: ExitCode.environment,
      hint: `journalctl -u ${unit}`,
    });
  }
  log.debug(`systemctl ${args.join(' ')}`);
}

export function systemdControl(log: Logger): ServiceControl {
  return {
    daemonReload: () => systemctl(['daemon-reload'], log),
    restart: async (unit) => {
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
  };
}
