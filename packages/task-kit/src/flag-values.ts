/** Typed values of parsed command-line flags; a bad value is a UsageError naming the flag (exit 2, one line). */
import { UsageError } from './errors.js';

export const flagString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A repeatable string flag (parseArgs `multiple: true`), or one given once. */
export const flagList = (v: unknown): string[] =>
  Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : [];

export function flagInt(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0 || String(v).trim() === '')
    throw new UsageError(`--${name} must be a non-negative integer, got "${String(v)}"`);
  return n;
}

export function flagSeconds(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || String(v).trim() === '')
    throw new UsageError(`--${name} must be a number of seconds >= 0, got "${String(v)}"`);
  return n;
}
