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

describe('maskSecret', () => {
  it('never returns the secret', () => {
    const key = generateApiKey();
    expect(maskSecret(key)).not.toContain(key.slice(3, 10));
    expect(maskSecret('short')).toBe('*****');
    expect(maskSecret('')).toBe('(empty)');
  });
});
