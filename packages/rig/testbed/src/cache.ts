import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Root of the host cache: `$SLM_COPILOT_CACHE`, default `~/.cache/slm-copilot`. */
export function cacheRoot(override?: string): string {
  return override || process.env.SLM_COPILOT_CACHE || join(homedir(), '.cache', 'slm-copilot');
}

/** Short sha256 (hex) of the given parts, used as a cache key. */
export function hashKey(parts: Array<string | Buffer>, length = 12): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
    h.update('\0');
  }
  return h.digest('hex').slice(0, length);
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export type Logger = (msg: string) => void;

/** Default logger: one line on stderr, prefixed so it is recognisable in test output. */
export const defaultLogger: Logger = (msg) => {
  process.stderr.write(`[testbed] ${msg}\n`);
};

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

/** Runs one named phase and logs its duration (also when it fails). */
export async function phase<T>(log: Logger, name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  log(`${name} ...`);
  try {
    const r = await fn();
    log(`${name}: done in ${formatDuration(performance.now() - t0)}`);
    return r;
  } catch (e) {
    log(`${name}: FAILED after ${formatDuration(performance.now() - t0)}`);
    throw e;
  }
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
