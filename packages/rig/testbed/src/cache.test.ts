import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exists } from '@slm-copilot/task-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAtomically } from './cache.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'testbed-cache-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
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
      await writeFile(join(tmp, 'ok'), 'ok');
    });
    expect(await exists(join(target, 'ok'))).toBe(true);
  });
});
