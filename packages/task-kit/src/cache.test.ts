import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheRoot, hashParts } from './cache.js';

const saved = process.env.SLM_COPILOT_CACHE;
afterEach(() => {
  if (saved === undefined) delete process.env.SLM_COPILOT_CACHE;
  else process.env.SLM_COPILOT_CACHE = saved;
});

describe('cacheRoot', () => {
  it('is SLM_COPILOT_CACHE when set and non-empty, else ~/.cache/slm-copilot', () => {
    process.env.SLM_COPILOT_CACHE = '/tmp/some-cache';
    expect(cacheRoot()).toBe('/tmp/some-cache');
    process.env.SLM_COPILOT_CACHE = '';
    expect(cacheRoot()).toBe(path.join(homedir(), '.cache', 'slm-copilot'));
    delete process.env.SLM_COPILOT_CACHE;
    expect(cacheRoot()).toBe(path.join(homedir(), '.cache', 'slm-copilot'));
  });
});

describe('hashParts', () => {
  it('is the sha256 of the parts, each followed by a NUL, strings and buffers alike', () => {
    const whole = createHash('sha256').update('ab\0c\0').digest('hex');
    expect(hashParts(['ab', 'c'])).toBe(whole);
    expect(hashParts([Buffer.from('ab'), 'c'], 12)).toBe(whole.slice(0, 12));
    expect(hashParts(['a', 'bc'])).not.toBe(whole);
  });
});
