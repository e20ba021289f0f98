import { stat } from 'node:fs/promises';
import path from 'node:path';
import { cacheRoot, createLogger, ExitCode, formatDuration, TaskError, type Logger } from '@slm-copilot/task-kit';

/** The cache directory of this package: `<cache>/vm`. */
export function vmCacheDir(): string {
  return path.join(cacheRoot(), 'vm');
}

export async function fileSize(file: string): Promise<number> {
  return (await stat(file)).size;
}

export function defaultLogger(log?: Logger, scope = 'vm'): Logger {
  return log ?? createLogger({ scope });
}

/**
 * Races `promise` against a hard timeout. On timeout `onTimeout` runs (kill the process…) and a TaskError
 * names the phase; the timer never keeps the event loop alive.
 */
export async function withTimeout<T>(
  what: string,
  ms: number,
  promise: Promise<T>,
  onTimeout?: () => unknown,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      void Promise.resolve()
        .then(() => onTimeout?.())
        .catch(() => undefined)
        .finally(() =>
          reject(new TaskError(`${what}: timed out after ${formatDuration(ms)}`, { exitCode: ExitCode.failure })),
        );
    }, ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The last `n` lines of a text, for error messages. */
export function tail(text: string, n = 20): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-n).join('\n');
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
