import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import path from 'node:path';

/** The host cache: `$SLM_COPILOT_CACHE` when set and non-empty, else `~/.cache/slm-copilot`. */
export function cacheRoot(): string {
  const env = process.env.SLM_COPILOT_CACHE;
  return env !== undefined && env !== '' ? env : path.join(homedir(), '.cache', 'slm-copilot');
}

/**
 * sha256 (hex, first `length` characters) of the parts, each followed by a NUL so that ["ab","c"] and
 * ["a","bc"] differ: the cache keys of the engine builds, test models and base image. Its output must
 * never change (a changed key rebuilds them).
 */
export function hashParts(parts: ReadonlyArray<string | Buffer>, length = 64): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, length);
}
