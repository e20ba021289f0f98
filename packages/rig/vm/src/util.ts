import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import path from 'node:path';
import { createLogger, ExitCode, formatDuration, TaskError, type Logger } from '@slm-copilot/task-kit';

/** `$SLM_COPILOT_CACHE`, default `~/.cache/slm-copilot`. */
export function cacheRoot(): string {
  return process.env.SLM_COPILOT_CACHE || path.join(homedir(), '.cache', 'slm-copilot');
}

/** The cache directory of this package: `<cache>/vm`. */
export function vmCacheDir(): string {
  return path.join(cacheRoot(), 'vm');
}

/** sha256 (hex) of the parts, each followed by a NUL so that ["ab","c"] and ["a","bc"] differ. */
export function hashParts(parts: readonly string[], length = 64): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, length);
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
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

/** A TCP port on 127.0.0.1 that was free a moment ago (the caller retries if it lost the race). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
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
