// The test bed's cache entries: where they go, their keys, and how one is filled without ever leaving a
// half-built entry behind. Logging, locks, hashing of files and the cache root are task-kit's.
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheRoot, createLogger, type Logger } from '@slm-copilot/task-kit';

/** The cache an options object names: its `cacheDir` when given, else task-kit's cacheRoot(). */
export function cacheDirOf(cacheDir?: string): string {
  return cacheDir || cacheRoot();
}

/** The test bed's logger when the caller passes none: stderr, scope `testbed`. */
export function testbedLogger(log?: Logger): Logger {
  return log ?? createLogger({ scope: 'testbed' });
}

/** Runs one logged phase and records its duration (ms) under its name in `durations` (kept in manifests). */
export async function timed<T>(
  log: Logger,
  durations: Record<string, number>,
  name: string,
  fn: () => Promise<T>,
): Promise<T> {
  const started = performance.now();
  const result = await log.phase(name, fn);
  durations[name] = Math.round(performance.now() - started);
  return result;
}

/**
 * Creates a fresh temporary directory next to `finalDir` (same file system, so the
 * final rename is atomic), runs `fill(tmpDir)`, then renames it into place.
 * On failure the temporary directory is removed: no half-built cache entry ever
 * appears under `finalDir`.
 */
export async function buildAtomically(finalDir: string, fill: (tmpDir: string) => Promise<void>): Promise<void> {
  const parent = join(finalDir, '..');
  await mkdir(parent, { recursive: true });
  const tmp = `${finalDir}.tmp-${process.pid}-${Date.now().toString(36)}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    await fill(tmp);
    await rm(finalDir, { recursive: true, force: true });
    await rename(tmp, finalDir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}
