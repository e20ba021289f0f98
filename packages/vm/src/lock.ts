import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, formatDuration, TaskError, type Logger } from '@slm-copilot/task-kit';
import { $ } from 'zx';

/**
 * Runs `fn` while holding an exclusive flock(2) lock on `lockFile`, across processes.
 * The lock is held by a `flock FILE cat` child: the kernel drops it when the holder dies for any reason,
 * so there is never a stale lock to clean up. Release = closing cat's stdin.
 */
export async function withFileLock<T>(lockFile: string, fn: () => Promise<T>, options: { timeoutMs?: number; log?: Logger; what?: string } = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 60 * 60_000;
  await mkdir(path.dirname(lockFile), { recursive: true });
  const started = performance.now();
  const holder = $({ quiet: true, nothrow: true })`exec flock --exclusive --wait ${String(Math.ceil(timeoutMs / 1000))} ${lockFile} cat`;
  let waitingLogged = false;
  const waitingTimer = setTimeout(() => {
    waitingLogged = true;
    options.log?.info(`waiting for the lock on ${options.what ?? lockFile} (another build holds it)`);
  }, 2000);
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const onData = (d: Buffer) => {
        out += d.toString();
        if (out.includes('locked\n')) {
          holder.stdout.off('data', onData);
          resolve();
        }
      };
      holder.stdout.on('data', onData);
      void holder.then((r) =>
        reject(new TaskError(`could not lock ${lockFile} (flock exit ${r.exitCode}): ${r.stderr.trim()}`, { exitCode: ExitCode.environment })),
      );
      holder.stdin.write('locked\n');
    });
  } finally {
    clearTimeout(waitingTimer);
  }
  if (waitingLogged) options.log?.info(`got the lock after ${formatDuration(performance.now() - started)}`);
  try {
    return await fn();
  } finally {
    holder.stdin.end();
    await holder;
  }
}
