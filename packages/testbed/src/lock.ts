import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { $ } from 'zx';
import { defaultLogger, formatDuration, type Logger } from './cache.js';

export interface LockOptions {
  /** Give up waiting after this long (default 60 min: a cold engine build takes ~5 min). */
  timeoutMs?: number;
  log?: Logger;
  /** What the lock protects, for the log line shown while waiting. */
  what?: string;
}

/**
 * Runs `fn` while holding an exclusive lock on `lockFile`.
 *
 * The lock is a kernel `flock(2)` lock held by a `flock FILE cat` child process: the
 * kernel releases it when the holder dies for any reason (crash, SIGKILL, OOM), so there
 * is no stale-lock state to detect or clean up. Acquisition is confirmed by `cat`
 * echoing a line we wrote to its stdin; release is closing that stdin. Works across
 * processes (vitest forks/threads, parallel CLI runs) on the same machine.
 */
export async function withLock<T>(lockFile: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const log = opts.log ?? defaultLogger;
  const timeoutMs = opts.timeoutMs ?? 60 * 60 * 1000;
  await mkdir(dirname(lockFile), { recursive: true });
  const t0 = performance.now();
  const holder = $({ quiet: true, nothrow: true })`exec flock --exclusive --no-fork --wait ${String(Math.ceil(timeoutMs / 1000))} ${lockFile} cat`;
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
      (o) => reject(new Error(`could not lock ${lockFile} within ${formatDuration(timeoutMs)} (flock exit ${o.exitCode}): ${o.stderr.trim()}`)),
      reject,
    );
  });
  holder.stdin.write('locked\n');
  const waitingNote = setTimeout(() => log(`waiting for lock ${lockFile}${opts.what ? ` (${opts.what})` : ''} held by another process ...`), 1500);
  try {
    await acquired;
  } finally {
    clearTimeout(waitingNote);
  }
  const waited = performance.now() - t0;
  if (waited > 1500) log(`lock ${lockFile} acquired after ${formatDuration(waited)}`);
  try {
    return await fn();
  } finally {
    holder.stdin.end();
    await holder;
  }
}
