import { appendFile, mkdir } from 'node:fs/promises';
import {
  createLogger,
  formatError,
  isTaskError,
  ExitCode,
  withLock,
  writeFileAtomic,
  underRoot,
  type Logger,
} from '@slm-copilot/task-kit';

export type Stage = 'install' | 'configure' | 'bootstrap';

/** Where the one-apps contract keeps its files (under a root prefix for tests). */
export function contractPaths(root: string) {
  const p = (appliancePath: string) => underRoot(root, appliancePath);
  return {
    status: p('/etc/one-appliance/status'),
    logDir: p('/var/log/one-appliance'),
    log: (stage: Stage) => p(`/var/log/one-appliance/${stage}.log`),
    motd: p('/etc/motd'),
    lock: p('/run/lock/one-appliance.lock'),
  };
}

/** A logger that writes to stderr and appends the same lines to the stage log. */
function stageLogger(logFile: string): { log: Logger; flush: () => Promise<void> } {
  const lines: string[] = [];
  let pending = Promise.resolve();
  const stream = Object.assign(
    new (class {
      write(chunk: string) {
        process.stderr.write(chunk);
        lines.push(chunk);
        pending = pending.then(() => appendFile(logFile, chunk, { mode: 0o600 })).catch(() => undefined);
        return true;
      }
    })(),
    { isTTY: false },
  ) as unknown as NodeJS.WritableStream & { isTTY: boolean };
  return { log: createLogger({ stream, timestamps: true, color: false }), flush: () => pending };
}

const MOTD_OK = 'All set and ready to serve 8)';
const MOTD_FAIL = 'APPLIANCE ERROR: the last stage failed; see /var/log/one-appliance/';

/**
 * Runs one lifecycle stage the way one-apps' service.sh does: under an exclusive lock, with
 * `<stage>_started|_success|_failure` in the status file, the output in the stage log, and the
 * framework's success/failure line in /etc/motd — so the image behaves the same with or without
 * the upstream framework.
 */
export async function runStage(stage: Stage, root: string, fn: (log: Logger) => Promise<void>): Promise<number> {
  const files = contractPaths(root);
  await mkdir(files.logDir, { recursive: true, mode: 0o700 });
  const previousUmask = process.umask(0o077);
  const { log, flush } = stageLogger(files.log(stage));
  try {
    return await withLock(
      files.lock,
      async () => {
        const started = performance.now();
        await writeFileAtomic(files.status, `${stage}_started\n`, { mode: 0o644 });
        log.info(`=== ${stage} started`);
        try {
          await fn(log);
          await writeFileAtomic(files.status, `${stage}_success\n`, { mode: 0o644 });
          if (stage !== 'install') await writeFileAtomic(files.motd, `${MOTD_OK}\n`, { mode: 0o644 });
          log.info(`=== ${stage} finished in ${((performance.now() - started) / 1000).toFixed(1)} s`);
          return ExitCode.ok;
        } catch (error) {
          await writeFileAtomic(files.status, `${stage}_failure\n`, { mode: 0o644 });
          if (stage !== 'install') await writeFileAtomic(files.motd, `${MOTD_FAIL}\n`, { mode: 0o644 });
          log.error(`=== ${stage} failed: ${formatError(error)}`);
          return isTaskError(error) ? error.exitCode : ExitCode.failure;
        }
      },
      { what: `one-appliance ${stage}` },
    );
  } finally {
    await flush();
    process.umask(previousUmask);
  }
}
