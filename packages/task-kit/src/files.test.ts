import { mkdtemp, readdir, readFile, stat, chmod, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyFileSet, changedPaths, ensureDir, writeFileAtomic } from './files.js';
import { underRoot } from './root.js';
import { TaskError } from './errors.js';

const tempRoot = () => mkdtemp(path.join(tmpdir(), 'task-kit-'));

describe('writeFileAtomic', () => {
  it('reports created, unchanged and updated, and keeps the mtime of an unchanged file', async () => {
    const root = await tempRoot();
    const file = path.join(root, 'a/b/c.conf');
    expect(await writeFileAtomic(file, 'one\n', { mode: 0o600 })).toBe('created');
    const first = await stat(file);
    expect(first.mode & 0o777).toBe(0o600);
    await new Promise((r) => setTimeout(r, 20));
    expect(await writeFileAtomic(file, 'one\n', { mode: 0o600 })).toBe('unchanged');
    expect((await stat(file)).mtimeMs).toBe(first.mtimeMs);
    expect(await writeFileAtomic(file, 'two\n', { mode: 0o600 })).toBe('updated');
    expect(await readFile(file, 'utf8')).toBe('two\n');
    // a mode change alone is a change
    expect(await writeFileAtomic(file, 'two\n', { mode: 0o640 })).toBe('updated');
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    // no temp files are left behind
    expect(await readdir(path.dirname(file))).toEqual(['c.conf']);
  });

  it('leaves nothing half-written when the write fails', async () => {
    if (process.getuid?.() === 0) {
      // root ignores directory permissions; use a path whose parent is a file instead
      const root = await tempRoot();
      await writeFileAtomic(path.join(root, 'file'), 'x');
      await expect(writeFileAtomic(path.join(root, 'file/child'), 'y')).rejects.toBeInstanceOf(Error);
      expect(await readdir(root)).toEqual(['file']);
      return;
    }
    const root = await tempRoot();
    await mkdir(path.join(root, 'ro'));
    await writeFileAtomic(path.join(root, 'ro/x'), 'old');
    await chmod(path.join(root, 'ro'), 0o500);
    await expect(writeFileAtomic(path.join(root, 'ro/x'), 'new')).rejects.toBeInstanceOf(TaskError);
    expect(await readFile(path.join(root, 'ro/x'), 'utf8')).toBe('old');
    expect(await readdir(path.join(root, 'ro'))).toEqual(['x']);
  });
});

describe('applyFileSet', () => {
  it('writes under the root prefix and reports only changed paths on the second run', async () => {
    const root = await tempRoot();
    const set = [
      { path: '/etc/x/one', text: '1\n' },
      { path: '/etc/x/secret', text: 's\n', mode: 0o600 },
    ];
    expect(changedPaths(await applyFileSet(root, set))).toEqual(['/etc/x/one', '/etc/x/secret']);
    expect(changedPaths(await applyFileSet(root, set))).toEqual([]);
    expect(changedPaths(await applyFileSet(root, [{ path: '/etc/x/one', text: '2\n' }, set[1]!]))).toEqual([
      '/etc/x/one',
    ]);
    expect(await readFile(underRoot(root, '/etc/x/one'), 'utf8')).toBe('2\n');
  });

  it('refuses relative paths and duplicates', async () => {
    const root = await tempRoot();
    await expect(applyFileSet(root, [{ path: 'etc/x', text: '' }])).rejects.toThrow(/absolute/);
    await expect(
      applyFileSet(root, [
        { path: '/a', text: '' },
        { path: '/a', text: '' },
      ]),
    ).rejects.toThrow(/twice/);
  });
});

describe('ensureDir', () => {
  it('creates every missing directory with the given mode, whatever the umask', async () => {
    const root = await tempRoot();
    const old = process.umask(0o077);
    try {
      await ensureDir(path.join(root, 'a/b/c'));
      await writeFileAtomic(path.join(root, 'x/y/file'), 'z', { mode: 0o644 });
    } finally {
      process.umask(old);
    }
    for (const d of ['a', 'a/b', 'a/b/c', 'x', 'x/y'])
      expect((await stat(path.join(root, d))).mode & 0o777).toBe(0o755);
    await ensureDir(path.join(root, 'secret'), 0o700);
    expect((await stat(path.join(root, 'secret'))).mode & 0o777).toBe(0o700);
  });
});
