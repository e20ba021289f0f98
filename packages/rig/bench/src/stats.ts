export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const round = (x: number, digits = 3): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A short random tag that makes a prompt unique (no prompt-cache hit from earlier requests). */
export const nonce = () => Math.random().toString(36).slice(2, 10);

/** A number for the log and the figures' words: `d` decimals, or as is when not finite. */
export const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

/** A token rate for the log and the figures' words. */
export const tps = (x: number) => `${fmt(x, x < 10 ? 2 : 1)} tok/s`;
