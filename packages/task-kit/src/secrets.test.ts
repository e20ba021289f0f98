import { describe, expect, it } from 'vitest';
import { API_KEY_PATTERN, generateApiKey, maskSecret } from './secrets.js';

describe('generateApiKey', () => {
  it('produces distinct keys that satisfy the key pattern', () => {
    const keys = new Set(Array.from({ length: 200 }, () => generateApiKey()));
    expect(keys.size).toBe(200);
    for (const k of keys) {
      expect(k).toMatch(API_KEY_PATTERN);
      expect(k).toMatch(/^sk-[A-Za-z0-9]{40}$/);
    }
  });
  it('uses every alphabet character with roughly equal frequency', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 500; i++) for (const c of generateApiKey(40).slice(3)) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    const expected = (500 * 40) / 62;
    for (const n of counts.values()) expect(Math.abs(n - expected)).toBeLessThan(expected * 0.4);
  });
});

/** Every run of `n` consecutive characters of `secret` that appears in `text`. */
function leakedRuns(text: string, secret: string, n: number): string[] {
  const runs: string[] = [];
  for (let i = 0; i + n <= secret.length; i++)
    if (text.includes(secret.slice(i, i + n))) runs.push(secret.slice(i, i + n));
  return runs;
}

describe('maskSecret', () => {
  // The mask must carry no information about the secret: equal for any two non-empty secrets (a random key
  // may share a two-letter run with the fixed mask text by chance, so "no shared run" is not the property).
  it('reveals nothing of the secret: one mask for every non-empty secret, holding neither a run nor the length', () => {
    const secrets = ['Sup3rS3cretPassw0rd-4567', 'x', 'q9', ...Array.from({ length: 200 }, () => generateApiKey())];
    const masks = new Set(secrets.map(maskSecret));
    expect(masks.size).toBe(1);
    for (const secret of secrets.slice(0, 3)) {
      const masked = maskSecret(secret);
      expect(leakedRuns(masked, secret, Math.min(2, secret.length))).toEqual([]);
      expect(masked).not.toContain(String(secret.length));
    }
  });
  it('is the same for secrets of any length, and tells an empty value apart', () => {
    const masks = new Set([1, 5, 11, 12, 24, 43, 256].map((n) => maskSecret('k'.repeat(n))));
    expect(masks.size).toBe(1);
    expect(maskSecret('')).not.toBe(maskSecret('k'));
    expect(maskSecret('')).toBe('(empty)');
  });
});
