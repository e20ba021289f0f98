import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { $ } from 'zx';
import { TaskError, ExitCode } from './errors.js';
import { formatDuration, type Logger } from './log.js';

export interface LockOptions {
  /** Give up waiting after this long (default 60 min). */
  timeoutMs?: number;
  /** Where the "waiting for the lock" lines go (anything with an `info`). */
  log?: Pick<Logger, 'info'>;
  /** What the lock protects, for the line shown while waiting. */
  what?: string;
}

/**
 * Runs `fn` holding an exclusive kernel lock (flock(2)) on `lockFile`. The lock is held by a
 * `flock FILE cat` child: the kernel releases it whenever the holder dies (crash, SIGKILL), so
 * there is never a stale lock to clean up. Acquisition is confirmed by `cat` echoing a line back.
 */
export async function withLock<T>(lockFile: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 60 * 60 * 1000;
  await mkdir(dirname(lockFile), { recursive: true });
  const started = performance.now();
  const holder = $({
    quiet: true,
    nothrow: true,
  })`exec flock --exclusive --no-fork --wait ${String(Math.ceil(timeoutMs / 1000))} ${lockFile} cat`;
  const acquired = new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('locked\n')) {
        holder.stdout.off('data', onData);
        resolve();
      }
    };
    holder.stdout.on('data', onData);
    holder.then(
      (o) =>
        reject(
          new TaskError(
            `could not lock ${lockFile} within ${formatDuration(timeoutMs)} ` +
              `(flock exit ${o.exitCode}): ${o.stderr.trim()}`,
            { exitCode: ExitCode.environment },
          ),
        ),
      reject,
    );
  });
  holder.stdin.write('locked\n');
  const note = setTimeout(
    () => opts.log?.info(`waiting for ${lockFile}${opts.what ? ` (${opts.what})` : ''}, held by another process…`),
    1500,
  );
  try {
    await acquired;
  } finally {
    clearTimeout(note);
  }
  const waited = performance.now() - started;
  if (waited > 1500) opts.log?.info(`${lockFile} acquired after ${formatDuration(waited)}`);
  try {
    return await fn();
  } finally {
    holder.stdin.end();
    await holder;
  }
}
