import { createHash } from 'node:crypto';
import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { exists, fsyncDir, sha256File } from './fs.js';

const tempDir = () => mkdtemp(path.join(tmpdir(), 'task-kit-fs-'));

describe('exists', () => {
  it('is true for files and directories, false for missing paths and dangling symlinks', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'f'), 'x');
    await symlink(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
    expect(await exists(path.join(dir, 'f'))).toBe(true);
    expect(await exists(dir)).toBe(true);
    expect(await exists(path.join(dir, 'missing'))).toBe(false);
    expect(await exists(path.join(dir, 'dangling'))).toBe(false);
  });
});

describe('sha256File', () => {
  it('matches sha256sum, also for a file larger than one read chunk', async () => {
    const file = path.join(await tempDir(), 'blob');
    const data = Buffer.alloc(3 * 1024 * 1024 + 7);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    await writeFile(file, data);
    const reference = (await $({ quiet: true })`sha256sum ${file}`).stdout.split(' ')[0];
    expect(await sha256File(file)).toBe(reference);
    expect(await sha256File(file)).toBe(createHash('sha256').update(data).digest('hex'));
  });
  it('rejects for a missing file', async () => {
    await expect(sha256File(path.join(await tempDir(), 'missing'))).rejects.toThrow(/ENOENT/);
  });
});

describe('fsyncDir', () => {
  it('syncs an existing directory and rejects a missing one', async () => {
    const dir = await tempDir();
    await expect(fsyncDir(dir)).resolves.toBeUndefined();
    await expect(fsyncDir(path.join(dir, 'missing'))).rejects.toThrow(/ENOENT/);
  });
});
