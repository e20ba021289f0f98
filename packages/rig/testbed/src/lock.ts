import { withLock as withKernelLock } from '@slm-copilot/task-kit';
import { defaultLogger, type Logger } from './cache.js';

export interface LockOptions {
  /** Give up waiting after this long (default 60 min: a cold engine build takes minutes). */
  timeoutMs?: number;
  log?: Logger;
  /** What the lock protects, for the log line shown while waiting. */
  what?: string;
}

/**
 * task-kit's flock(2)-based lock (released by the kernel when the holder dies), with the test
 * bed's one-function logger.
 */
export function withLock<T>(lockFile: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const log = opts.log ?? defaultLogger;
  return withKernelLock(lockFile, fn, { timeoutMs: opts.timeoutMs, what: opts.what, log: { info: (m) => log(m) } });
}
