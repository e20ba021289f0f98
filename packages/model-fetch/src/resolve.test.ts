import { copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, TaskError } from '@slm-copilot/task-kit';
import { startMirror, type Mirror } from '@slm-copilot/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG, findModel, type CatalogEntry } from './catalog.js';
import { fetchModel } from './fetch.js';
import { hubDownloadUrl } from './catalog.js';
import {
  DEFAULT_HUB,
  lockedArtifact,
  missingLockHint,
  MODEL_FETCH_FROM_ROOT,
  readLock,
  resolveModel,
  writeLockEntries,
} from './resolve.js';
import { $ } from 'zx';
import { captureLogger, PACKAGE_DIR, randomGguf, runCli, startFakeHub, tempDir } from '../test-support/index.js';

const COMMIT = 'a'.repeat(39) + '1';
const OLD_COMMIT = 'b'.repeat(40);
const devstral = findModel('devstral-small-2');
const qwen = findModel('qwen2.5-coder-7b');
const REPO_ROOT = path.resolve(PACKAGE_DIR, '../..');

let dir: string;
let mirror: Mirror;
let hub: Awaited<ReturnType<typeof startFakeHub>>;
let file: { sha256: string; size: number };

beforeAll(async () => {
  dir = await tempDir('resolve');
  const mirrorRoot = path.join(dir, 'cdn');
  await mkdir(mirrorRoot);
  file = await randomGguf(path.join(mirrorRoot, 'blob'), 2 * 1024 * 1024);
  mirror = await startMirror({ root: mirrorRoot });
  hub = await startFakeHub([
    {
      repo: devstral.repo,
      // the catalog pins devstral to a commit: the fake hub knows it too
      refs: { main: COMMIT, v1: OLD_COMMIT, pinned: devstral.revision },
      files: [
        { path: '.gitattributes', size: 1570 },
        { path: 'README.md', size: 9000 },
        { path: devstral.file.replace('Q4_K_M', 'Q8_0'), size: 25_000_000_000, sha256: 'c'.repeat(64) },
        { path: devstral.file, size: file.size, sha256: file.sha256, redirectTo: `${mirror.baseUrl}/blob` },
        { path: 'not-lfs.gguf', size: 10 },
      ],
    },
    { repo: qwen.repo, refs: { main: COMMIT }, files: [{ path: qwen.file, size: 4242, sha256: 'e'.repeat(64) }] },
  ]);
});
afterAll(async () => {
  await hub?.stop();
  await mirror?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function expectTaskError(p: Promise<unknown>): Promise<TaskError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TaskError);
  return error as TaskError;
}

describe('catalog', () => {
  it('never carries a checksum or size: they are resolved at build time', () => {
    expect(CATALOG.length).toBeGreaterThanOrEqual(3);
    expect(CATALOG[0]!.id).toBe('devstral-small-2');
    expect(CATALOG[0]!.repo).toBe('unsloth/Devstral-Small-2-24B-Instruct-2512-GGUF');
    expect(CATALOG[0]!.file).toBe('Devstral-Small-2-24B-Instruct-2512-Q4_K_M.gguf');
    for (const e of CATALOG) {
      expect(e.sha256).toBeNull();
      expect(e.size).toBeNull();
      expect(typeof e.verified).toBe('boolean');
      expect(e.file.endsWith('.gguf')).toBe(true);
    }
  });

  it('names the known ids for an unknown one', () => {
    expect(() => findModel('gpt-5')).toThrow(/unknown model "gpt-5"/);
  });
});

describe('resolveModel against a FAKE hub (test double)', () => {
  it('pins the revision to a commit and reads sha256/size from the LFS metadata (across pages)', async () => {
    hub.requests.length = 0;
    const r = await resolveModel(devstral, { hub: hub.url, revision: 'main' });
    expect(r).toMatchObject({
      url: `${hub.url}/${devstral.repo}/resolve/${COMMIT}/${devstral.file}`,
      version: COMMIT,
      size: file.size,
      sha256: file.sha256,
      checksumSource: `${hub.url}/api/models/${devstral.repo}/tree/${COMMIT} (lfs.oid)`,
      requestedRevision: 'main',
    });
    expect(hub.requests).toEqual([
      `GET /api/models/${devstral.repo}/revision/main`,
      `GET /api/models/${devstral.repo}/tree/${COMMIT}`,
      `GET /api/models/${devstral.repo}/tree/${COMMIT}?cursor=p2`,
    ]);
  });

  it('uses a given revision; a commit id is used as is', async () => {
    expect((await resolveModel(devstral, { hub: hub.url, revision: 'v1' })).version).toBe(OLD_COMMIT);
    hub.requests.length = 0;
    expect((await resolveModel(devstral, { hub: hub.url, revision: OLD_COMMIT })).version).toBe(OLD_COMMIT);
    expect(hub.requests.some((r) => r.includes('/revision/'))).toBe(false);
  });

  it('refuses a file without an LFS SHA-256, a missing file and a missing repo', async () => {
    const entry = (over: Partial<CatalogEntry>): CatalogEntry => ({ ...devstral, ...over });
    const noLfs = await expectTaskError(resolveModel(entry({ file: 'not-lfs.gguf' }), { hub: hub.url }));
    expect(noLfs.message).toMatch(/has no LFS SHA-256/);
    const missing = await expectTaskError(resolveModel(entry({ file: 'nope.gguf' }), { hub: hub.url }));
    expect(missing.message).toMatch(/has no file nope\.gguf/);
    expect(missing.hint).toContain(devstral.file);
    const noRepo = await expectTaskError(
      resolveModel(entry({ repo: 'someone/nothing', revision: 'main' }), { hub: hub.url }),
    );
    expect(noRepo.exitCode).toBe(ExitCode.network);
    expect(noRepo.message).toContain(`HTTP 404 for ${hub.url}/api/models/someone/nothing/revision/main`);
  });
});

describe('artifacts.lock.json', () => {
  it('records the resolved model, keeps other entries, and does not churn on re-resolve', async () => {
    const lock = path.join(dir, 'artifacts.lock.json');
    await writeFile(
      lock,
      JSON.stringify({
        comment: 'kept',
        artifacts: {
          'base-image': {
            url: 'http://x/base.qcow2',
            version: '12',
            size: 1,
            sha256: 'd'.repeat(64),
            checksumSource: 'x',
            resolvedAt: 't',
          },
        },
      }),
    );
    const r = await resolveModel(devstral, { hub: hub.url, revision: 'main' });
    expect(await writeLockEntries(lock, { 'devstral-small-2': r })).toBe(true);
    const written = JSON.parse(await readFile(lock, 'utf8'));
    expect(written.comment).toBe('kept');
    expect(Object.keys(written.artifacts)).toEqual(['base-image', 'devstral-small-2']);
    expect(written.artifacts['devstral-small-2']).toEqual({
      url: r.url,
      version: COMMIT,
      size: file.size,
      sha256: file.sha256,
      checksumSource: r.checksumSource,
      resolvedAt: r.resolvedAt,
      repo: devstral.repo,
      file: devstral.file,
    });
    const mtime = (await stat(lock)).mtimeMs;
    const again = await resolveModel(devstral, { hub: hub.url, revision: 'main' });
    expect(again.resolvedAt).not.toBe(r.resolvedAt);
    expect(await writeLockEntries(lock, { 'devstral-small-2': again })).toBe(false);
    expect((await stat(lock)).mtimeMs).toBe(mtime);
    expect((await lockedArtifact(lock, 'devstral-small-2')).resolvedAt).toBe(r.resolvedAt);
  });

  it('creates a missing lock; refuses a malformed one', async () => {
    const fresh = path.join(dir, 'sub', 'new.lock.json');
    expect(await readLock(fresh)).toEqual({ artifacts: {} });
    const broken = path.join(dir, 'broken.json');
    await writeFile(broken, '{"nope": 1}');
    expect((await expectTaskError(readLock(broken))).message).toMatch(/has no "artifacts" object/);
    expect((await expectTaskError(lockedArtifact(fresh, 'x'))).hint).toMatch(
      /"x" is not a catalog model \(known: devstral-small-2, /,
    );
  });

  it(
    'end to end through the CLI: resolve writes the lock, fetch follows the hub redirect, installs the file',
    { timeout: 60_000 },
    async () => {
      const lock = path.join(dir, 'e2e.lock.json');
      const res = await runCli(['resolve', '--model', 'devstral-small-2', '--lock', lock, '--hub', hub.url]);
      expect(res.code, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout)['devstral-small-2'].sha256).toBe(file.sha256);
      const dest = path.join(dir, 'models', 'devstral.gguf');
      const fetched = await runCli(['fetch', '--lock', lock, '--artifact', 'devstral-small-2', '--dest', dest]);
      expect(fetched.code, fetched.stderr).toBe(0);
      expect(JSON.parse(fetched.stdout)).toMatchObject({ sha256: file.sha256, bytes: file.size, downloaded: true });
      expect(fetched.stderr).toMatch(/302 Found/);

      // a mirror directory laid out as <mirror>/<artifact-name> is used before the hub
      const mirrorDir = path.join(dir, 'mirror-dir');
      await mkdir(mirrorDir);
      await copyFile(dest, path.join(mirrorDir, 'devstral-small-2'));
      const viaMirror = await runCli([
        'fetch',
        '--lock',
        lock,
        '--artifact',
        'devstral-small-2',
        '--dest',
        path.join(dir, 'models2', 'm.gguf'),
        '--mirror',
        mirrorDir,
      ]);
      expect(viaMirror.code, viaMirror.stderr).toBe(0);
      expect(JSON.parse(viaMirror.stdout).source).toBe(path.join(mirrorDir, 'devstral-small-2'));

      // the same through the library: already in place, nothing downloaded
      const a = await lockedArtifact(lock, 'devstral-small-2');
      const again = await fetchModel({ urls: [a.url], sha256: a.sha256, size: a.size, dest, log: captureLogger().log });
      expect(again.downloaded).toBe(false);
    },
  );
});

describe('the repository lock (artifacts.lock.json at the repository root)', () => {
  const lockPath = path.join(REPO_ROOT, 'artifacts.lock.json');

  // The values are the ones the ship-what-we-test issue records (with their provenance): the lock must
  // carry exactly these.
  it('pins the default model: repository, file, revision, size, sha256 and provenance', async () => {
    const lock = JSON.parse(await readFile(lockPath, 'utf8')) as { artifacts: Record<string, Record<string, unknown>> };
    const entry = lock.artifacts['devstral-small-2'];
    expect(entry).toEqual({
      url: expect.any(String),
      version: '6e458b8add42681bfd023de5eab93637694aaf82',
      size: 14_334_446_752,
      sha256: 'd14ba9edee1bb4c4996a726deb81e49ae81800a3216f0774634238c380aee496',
      checksumSource: expect.stringContaining('five independent model catalogs'),
      resolvedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
      repo: 'unsloth/Devstral-Small-2-24B-Instruct-2512-GGUF',
      file: 'Devstral-Small-2-24B-Instruct-2512-Q4_K_M.gguf',
      provenance:
        'published identically by five independent model catalogs; the hub page itself was not reachable from here; ' +
        'model-fetch verifies every byte on download',
    });
    // the catalog names the same repository, file and revision as the lock
    expect({ repo: devstral.repo, file: devstral.file, revision: devstral.revision }).toEqual({
      repo: entry!.repo,
      file: entry!.file,
      revision: entry!.version,
    });
  });

  it('lockedArtifact returns it, with the download URL pinned to the revision (not a branch)', async () => {
    const a = await lockedArtifact(lockPath, 'devstral-small-2');
    expect(a.url).toBe(hubDownloadUrl(DEFAULT_HUB, devstral.repo, a.version, devstral.file));
    expect(a.url).toBe(
      'https://huggingface.co/unsloth/Devstral-Small-2-24B-Instruct-2512-GGUF/resolve/6e458b8add42681bfd023de5eab93637694aaf82/' +
        'Devstral-Small-2-24B-Instruct-2512-Q4_K_M.gguf',
    );
    expect(new URL(a.url).pathname.split('/')).not.toContain('main');
    expect(a.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it(
    'a catalog model without an entry: the hint names its id and a command that runs as typed from the repository root',
    { timeout: 120_000 },
    async () => {
      const e = await expectTaskError(lockedArtifact(lockPath, qwen.id));
      expect(e.message).toBe(`${lockPath} has no resolved artifact "${qwen.id}"`);
      expect(e.hint).toBe(missingLockHint(qwen.id, lockPath));
      expect(e.hint).toContain(`${MODEL_FETCH_FROM_ROOT} resolve --model ${qwen.id} --lock ${lockPath}`);
      expect(missingLockHint(qwen.id)).toContain(`--lock ../../artifacts.lock.json`);

      // Run the hinted command exactly as printed, from the repository root, against a scratch lock
      // (and the fake hub instead of the internet: the only flag added).
      const scratch = path.join(dir, 'hint', 'artifacts.lock.json');
      const command = missingLockHint(qwen.id, scratch).split(': ').at(-1)!;
      expect(command.startsWith('pnpm ')).toBe(true);
      const argv = command.split(' ');
      const r = await $({ cwd: REPO_ROOT, nothrow: true, quiet: true })`${argv} --hub ${hub.url}`;
      expect(r.exitCode, r.stderr).toBe(0);
      expect((await lockedArtifact(scratch, qwen.id)).url).toBe(
        `${hub.url}/${qwen.repo}/resolve/${COMMIT}/${qwen.file}`,
      );
    },
  );
});
