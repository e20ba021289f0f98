import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAtomically, exists } from './cache.js';
import { freePort, startLlamaServer } from './llama-server.js';
import { withLock } from './lock.js';

let dir: string;
const quiet = () => {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'testbed-lock-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('withLock', () => {
  it('serialises concurrent holders of the same lock', async () => {
    const events: string[] = [];
    const job = (name: string) =>
      withLock(
        join(dir, 'a.lock'),
        async () => {
          events.push(`${name}+`);
          await new Promise((r) => setTimeout(r, 200));
          events.push(`${name}-`);
          return name;
        },
        { log: quiet },
      );
    const results = await Promise.all([job('x'), job('y'), job('z')]);
    expect(results).toEqual(['x', 'y', 'z']);
    for (let i = 0; i < events.length; i += 2) {
      expect(events[i]!.slice(0, 1)).toBe(events[i + 1]!.slice(0, 1)); // never interleaved
    }
  });

  it('is released when the holding process is killed (no stale lock)', async () => {
    const lock = join(dir, 'b.lock');
    // A separate Node process takes the lock through withLock and is then SIGKILLed mid-work.
    const script = join(dir, 'holder.mts');
    await writeFile(
      script,
      `import { withLock } from ${JSON.stringify(join(import.meta.dirname, 'lock.ts'))};\n` +
        `await withLock(${JSON.stringify(lock)}, async () => { console.log('held'); await new Promise(() => {}); }, { log: () => {} });\n`,
    );
    const holder = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', script], {
      cwd: join(import.meta.dirname, '..'),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
      holder.on('exit', (code) => reject(new Error(`holder exited early (${code})`)));
    });
    let acquired = false;
    const waiting = withLock(lock, async () => (acquired = true), { log: quiet });
    await new Promise((r) => setTimeout(r, 500));
    expect(acquired).toBe(false);
    holder.kill('SIGKILL');
    await waiting;
    expect(acquired).toBe(true);
  }, 30_000);

  it('releases the lock when fn throws', async () => {
    const lock = join(dir, 'c.lock');
    await expect(withLock(lock, async () => Promise.reject(new Error('boom')), { log: quiet })).rejects.toThrow('boom');
    expect(await withLock(lock, async () => 'again', { log: quiet })).toBe('again');
  });

  it('times out with a clear error', async () => {
    const lock = join(dir, 'd.lock');
    const holder = spawn('flock', ['--exclusive', '--no-fork', lock, 'sleep', '60'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    try {
      await expect(withLock(lock, async () => 1, { log: quiet, timeoutMs: 1000 })).rejects.toThrow(/could not lock/);
    } finally {
      holder.kill('SIGKILL');
    }
  });
});

describe('buildAtomically', () => {
  it('leaves no entry behind when filling fails', async () => {
    const target = join(dir, 'entry');
    await expect(
      buildAtomically(target, async () => {
        throw new Error('half-built');
      }),
    ).rejects.toThrow('half-built');
    expect(await exists(target)).toBe(false);
    await buildAtomically(target, async (tmp) => {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(join(tmp, 'ok'), 'ok');
    });
    expect(await exists(join(target, 'ok'))).toBe(true);
  });
});

describe('startLlamaServer errors', () => {
  it('reports the output tail when the server exits before it is ready', async () => {
    await expect(
      startLlamaServer({ binary: '/bin/sh', args: ['-c', 'echo "model file is broken" >&2; exit 3'] }),
    ).rejects.toThrow(/exited \(code 3\)[\s\S]*model file is broken/);
  });

  it('times out with the output tail when /health never answers', async () => {
    // a generous timeout: on a loaded machine the shell may need seconds to print its line
    await expect(
      startLlamaServer({
        binary: '/bin/sh',
        args: ['-c', 'echo "still loading" >&2; exec sleep 60'],
        readyTimeoutMs: 8000,
      }),
    ).rejects.toThrow(/not ready within[\s\S]*still loading/);
  });

  it('freePort returns a bindable port', async () => {
    const p = await freePort();
    expect(p).toBeGreaterThan(1023);
  });

  it('freePort never hands out the same port twice in one process (the kernel may repeat one)', async () => {
    const ports = [];
    for (let i = 0; i < 200; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(200);
  });
});
