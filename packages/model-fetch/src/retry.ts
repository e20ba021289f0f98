// When to try a source again: transient network failures only, with exponential backoff, bounded
// by a count and a time window of attempts that made no progress.
import { formatDuration } from '@slm-copilot/task-kit';
import type { Failure } from './wget.js';

export interface RetryPolicy {
  /** Attempts per source without progress (the first one included): 1 = never retry. */
  tries: number;
  /** Delay before the first retry; doubled for each further one, up to `maxDelayMs`. */
  firstDelayMs: number;
  maxDelayMs: number;
  /** No retry starts later than this after the first attempt of a run of attempts without progress. */
  windowMs: number;
}

/** An attempt that added at least this much counts as progress and starts a fresh run of tries. */
export const PROGRESS_BYTES = 1024 * 1024;

/** Refused, reset, dropped, timed out, generic network errors and HTTP 408/429/5xx may pass; the rest will not. */
export function isTransient(f: Failure): boolean {
  if (['refused', 'reset', 'dropped', 'timeout', 'network'].includes(f.kind)) return true;
  return f.kind === 'http' && f.status !== undefined && (f.status === 408 || f.status === 429 || f.status >= 500);
}

/** The delay before retry number `n` (1-based) of a run: first, 2×first, 4×first, … capped. */
export function backoffDelayMs(policy: RetryPolicy, n: number): number {
  return Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** Math.max(0, n - 1));
}

export type RetryDecision = { retry: number; of: number; delayMs: number } | { giveUp: string };

/** Tracks one run of attempts without progress on one source. */
export class RetryBudget {
  private failed = 0;
  private runStart = 0;

  constructor(private readonly policy: RetryPolicy) {}

  /**
   * Records a failed attempt that started at `startedAt` and added `addedBytes`; returns the delay
   * before the next attempt, or a reason to give up (count or time window exhausted).
   */
  next(startedAt: number, addedBytes: number, now = performance.now()): RetryDecision {
    if (addedBytes >= PROGRESS_BYTES || this.failed === 0) {
      this.failed = 0;
      this.runStart = startedAt;
    }
    this.failed++;
    const of = this.policy.tries - 1;
    if (this.failed >= this.policy.tries) {
      return { giveUp: `no retry left (${this.failed} of ${this.policy.tries} tries failed since the last progress)` };
    }
    const delayMs = backoffDelayMs(this.policy, this.failed);
    const elapsed = now - this.runStart;
    if (elapsed + delayMs > this.policy.windowMs) {
      const window = formatDuration(this.policy.windowMs);
      const tried = `${this.failed} tries failed since the last progress`;
      return { giveUp: `no retry left (${tried}; the next would start after the ${window} retry window)` };
    }
    return { retry: this.failed, of, delayMs };
  }
}
