import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { withLock } from './lock.js';

describe('withLock', () => {
  it('serialises holders within a process', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'lock-')), 'x.lock');
    const events: string[] = [];
    const hold = (name: string) =>
      withLock(file, async () => {
        events.push(`${name}+`);
        await new Promise((r) => setTimeout(r, 150));
        events.push(`${name}-`);
      });
    await Promise.all([hold('a'), hold('b')]);
    expect(['a+a-b+b-', 'b+b-a+a-']).toContain(events.join(''));
  });

  it('excludes another process, and is released when its holder is killed', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'lock-')), 'y.lock');
    const other = $({ nothrow: true, quiet: true })`flock --exclusive ${file} sleep 30`;
    await new Promise((r) => setTimeout(r, 300));
    await expect(withLock(file, async () => 'got it', { timeoutMs: 1000 })).rejects.toThrow(/could not lock/);
    await other.kill('SIGKILL');
    await other;
    expect(await withLock(file, async () => 'got it', { timeoutMs: 5000 })).toBe('got it');
  }, 20_000);
});
