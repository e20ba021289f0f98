// Test support: wait for a condition instead of sleeping a fixed time, so that no test depends on
// how fast this machine is. The bound only decides when to give up (and say what was awaited).
export interface PollOptions {
  /** Give up after this long (default 30 s: generous, it only matters when something is broken). */
  timeoutMs?: number;
  /** Pause between checks (default 50 ms). */
  intervalMs?: number;
}

/** Resolves once `check` returns true (exceptions count as false); throws naming `what` on timeout. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  opts: PollOptions = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (
      await Promise.resolve()
        .then(check)
        .catch(() => false)
    )
      return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}
