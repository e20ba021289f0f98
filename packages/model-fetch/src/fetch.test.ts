import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, TaskError } from '@slm-copilot/task-kit';
import { freePort, startMirror, type Mirror } from '@slm-copilot/testbed';
import { $ } from 'zx';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { classifyWgetFailure, fetchModel, mirrorSources, type FetchModelOptions } from './fetch.js';
import { readManifest } from './manifest.js';
import { captureLogger, randomFile, settledRequests, tempDir } from './test-support.js';

const SIZE = 4 * 1024 * 1024;
let root: string; // mirror root
let work: string; // download destinations
let mirror: Mirror;
let file: { data: Buffer; sha256: string; size: number };
let n = 0;

beforeAll(async () => {
  root = await tempDir('mirror');
  work = await tempDir('dest');
  file = await randomFile(path.join(root, 'model.gguf'), SIZE);
  mirror = await startMirror({ root });
});
afterAll(async () => {
  await mirror?.stop();
  await rm(root, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});
beforeEach(() => {
  mirror.requests.length = 0;
  for (const k of Object.keys(mirror.faults)) mirror.setFault(k, undefined);
});

/** A fresh destination for each test. */
const freshDest = () => path.join(work, `t${++n}`, 'model.gguf');

const opts = (dest: string, extra: Partial<FetchModelOptions> = {}): FetchModelOptions => ({
  urls: [`${mirror.baseUrl}/model.gguf`],
  sha256: file.sha256,
  size: SIZE,
  dest,
  tries: 3,
  waitRetrySec: 1,
  timeoutSec: 10,
  progress: 'dot',
  ...extra,
});

async function expectTaskError(p: Promise<unknown>): Promise<TaskError> {
  const error = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TaskError);
  return error as TaskError;
}

const exists = (f: string) => stat(f).then(() => true, () => false);

describe('fetchModel: resumable download', () => {
  it('continues a download cut mid-file with a Range request and ends with the right SHA-256', async () => {
    mirror.setFault('model.gguf', { dropAfterBytes: 1_500_000 });
    const dest = freshDest();
    const { log, text } = captureLogger();
    const r = await fetchModel(opts(dest, { log }));
    expect(r.downloaded).toBe(true);
    expect(r.sha256).toBe(file.sha256);
    expect((await readFile(dest)).equals(file.data)).toBe(true);
    const reqs = await settledRequests(mirror, 'model.gguf', 2);
    expect(reqs.map((q) => [q.range, q.status, q.dropped])).toEqual([
      [null, 200, true],
      ['bytes=1500000-', 206, false],
    ]);
    expect(reqs[1]!.bytes).toBe(SIZE - 1_500_000);
    expect(text()).toMatch(/Connection closed at byte 1500000/);
    expect(await exists(`${dest}.partial`)).toBe(false);
    // every phase is timed
    expect(r.phases.map((p) => p.name)).toEqual(
      expect.arrayContaining(['check existing file', 'check free disk space', 'finish streamed SHA-256', 'install', 'write manifest']),
    );
    expect(text()).toMatch(/install: done in \d+ ms/);
  });

  it('keeps the partial file when it gives up, and the next run resumes it (hash-after mode)', async () => {
    mirror.setFault('model.gguf', { dropAfterBytes: 1_000_000 });
    const dest = freshDest();
    const first = await expectTaskError(fetchModel(opts(dest, { tries: 1, log: captureLogger().log })));
    expect(first.exitCode).toBe(ExitCode.network);
    expect(first.message).toContain(`${mirror.baseUrl}/model.gguf`);
    expect(first.message).toMatch(/connection kept dropping/);
    expect(first.hint).toMatch(/1000000 bytes are kept/);
    expect((await stat(`${dest}.partial`)).size).toBe(1_000_000);
    expect(await exists(dest)).toBe(false);

    const r = await fetchModel(opts(dest, { hashMode: 'after', log: captureLogger().log }));
    expect(r.sha256).toBe(file.sha256);
    expect(r.phases.map((p) => p.name)).toContain('verify SHA-256');
    const reqs = await settledRequests(mirror, 'model.gguf', 2);
    expect(reqs.at(-1)!.range).toBe('bytes=1000000-');
    expect(reqs.at(-1)!.bytes).toBe(SIZE - 1_000_000);
  });

  it('verifies a complete partial file without downloading anything', async () => {
    const dest = freshDest();
    await mkdir(path.dirname(dest), { recursive: true });
    await writeFile(`${dest}.partial`, file.data);
    const r = await fetchModel(opts(dest, { log: captureLogger().log }));
    expect(r.sha256).toBe(file.sha256);
    expect(mirror.requests).toEqual([]);
  });

  it('moves aside a partial file larger than the expected size and starts over', async () => {
    const dest = freshDest();
    await mkdir(path.dirname(dest), { recursive: true });
    await writeFile(`${dest}.partial`, Buffer.concat([file.data, Buffer.from('extra')]));
    const { log, text } = captureLogger();
    const r = await fetchModel(opts(dest, { log }));
    expect(r.sha256).toBe(file.sha256);
    expect(text()).toMatch(/is larger .* moved it aside/);
    const reqs = await settledRequests(mirror, 'model.gguf', 1);
    expect(reqs[0]!.range).toBeNull();
  });
});

describe('fetchModel: integrity', () => {
  it('rejects wrong bytes: never installed at dest, kept aside as .bad, retried once from scratch', async () => {
    mirror.setFault('model.gguf', { corrupt: true });
    const dest = freshDest();
    const { log, text } = captureLogger();
    const e = await expectTaskError(fetchModel(opts(dest, { log })));
    expect(e.exitCode).toBe(ExitCode.integrity);
    expect(e.message).toContain(`${mirror.baseUrl}/model.gguf: checksum mismatch`);
    expect(await exists(dest)).toBe(false);
    expect(await exists(`${dest}.manifest.json`)).toBe(false);
    expect(await exists(`${dest}.partial`)).toBe(false);
    const kept = await readFile(`${dest}.bad`);
    expect(kept.length).toBe(SIZE);
    expect(kept.equals(file.data)).toBe(false);
    expect(text()).toMatch(/moved aside to .*model\.gguf\.bad; retrying it once from scratch/);
    // exactly two full downloads: the first and the one retry, both from byte 0
    const reqs = await settledRequests(mirror, 'model.gguf', 2);
    expect(reqs.map((q) => [q.range, q.status])).toEqual([
      [null, 200],
      [null, 200],
    ]);
  });

  it('falls back to the next source after a corrupt mirror, and removes the .bad copy once a good one is installed', async () => {
    const good = await startMirror({ root });
    try {
      mirror.setFault('model.gguf', { corrupt: [10] });
      const dest = freshDest();
      const r = await fetchModel(opts(dest, { urls: [`${mirror.baseUrl}/model.gguf`, `${good.baseUrl}/model.gguf`], log: captureLogger().log }));
      expect(r.source).toBe(`${good.baseUrl}/model.gguf`);
      expect((await readFile(dest)).equals(file.data)).toBe(true);
      expect(await exists(`${dest}.bad`)).toBe(false);
    } finally {
      await good.stop();
    }
  });

  it('refuses a malformed sha256 before any network I/O', async () => {
    const e = await expectTaskError(fetchModel(opts(freshDest(), { sha256: 'abc' })));
    expect(e.exitCode).toBe(ExitCode.usage);
    expect(mirror.requests).toEqual([]);
  });
});

describe('fetchModel: errors name the URL and the cause', () => {
  it('404', async () => {
    const url = `${mirror.baseUrl}/missing.gguf`;
    const e = await expectTaskError(fetchModel(opts(freshDest(), { urls: [url], log: captureLogger().log })));
    expect(e.exitCode).toBe(ExitCode.network);
    expect(e.message).toContain(`${url}: HTTP 404 Not Found`);
  });

  it('connection refused', async () => {
    const url = `http://127.0.0.1:${await freePort()}/model.gguf`;
    const e = await expectTaskError(fetchModel(opts(freshDest(), { urls: [url], log: captureLogger().log })));
    expect(e.message).toContain(`${url}: connection refused`);
  });

  it('timeout', async () => {
    // its own mirror: the delayed response must not land in the shared request log later
    const slow = await startMirror({ root, faults: { 'model.gguf': { delayMs: 4000 } } });
    try {
      const url = `${slow.baseUrl}/model.gguf`;
      const e = await expectTaskError(fetchModel(opts(freshDest(), { urls: [url], timeoutSec: 1, tries: 1, log: captureLogger().log })));
      expect(e.message).toContain(`${url}: timed out`);
    } finally {
      await slow.stop();
    }
  });

  it('DNS failure', async () => {
    const url = 'http://no-such-host.invalid/model.gguf';
    const e = await expectTaskError(fetchModel(opts(freshDest(), { urls: [url], tries: 1, log: captureLogger().log })));
    expect(e.message).toContain(`${url}: DNS lookup failed for no-such-host.invalid`);
  });

  it('classifies wget messages (LC_ALL=C)', () => {
    expect(classifyWgetFailure(8, null, 'HTTP request sent, awaiting response... 503 Service Unavailable\n2026-11-28 05:39:03 ERROR 503: Service Unavailable.\n')).toEqual({
      kind: 'http',
      cause: 'HTTP 503 Service Unavailable',
    });
    expect(classifyWgetFailure(8, null, 'ERROR 403: Forbidden.\n').kind).toBe('auth');
    expect(classifyWgetFailure(3, null, "Cannot write to 'x' (No space left on device).\n").kind).toBe('disk-full');
    expect(classifyWgetFailure(8, null, "Continued download failed on this file, which conflicts with `-c'.\nRefusing to truncate existing file 'x'.\n").kind).toBe('no-resume');
    expect(classifyWgetFailure(null, 'SIGKILL', '')).toEqual({ kind: 'killed', cause: 'wget was killed by SIGKILL' });
    expect(classifyWgetFailure(4, null, 'Connecting to 10.0.0.1:80... failed: No route to host.\n').kind).toBe('network');
  });
});

describe('fetchModel: sources', () => {
  it('tries mirrors in order: a 404 on the first mirror, the second one serves the file', async () => {
    const second = await startMirror({ root });
    try {
      mirror.setFault('model.gguf', { status404: true });
      const dest = freshDest();
      const { log, text } = captureLogger();
      const urls = [...mirrorSources([mirror.baseUrl, `${second.baseUrl}/`], 'model.gguf'), 'http://no-such-host.invalid/upstream/model.gguf'];
      const r = await fetchModel(opts(dest, { urls, log }));
      expect(r.source).toBe(`${second.baseUrl}/model.gguf`);
      expect((await settledRequests(mirror, 'model.gguf', 1)).map((q) => q.status)).toEqual([404]);
      expect((await settledRequests(second, 'model.gguf', 1)).map((q) => q.status)).toEqual([200]);
      expect(text()).toContain(`${mirror.baseUrl}/model.gguf: HTTP 404 Not Found`);
    } finally {
      await second.stop();
    }
  });

  it('copies from a mirror directory on this machine', async () => {
    const dest = freshDest();
    const r = await fetchModel(opts(dest, { urls: [...mirrorSources([path.join(root, 'nope'), root], 'model.gguf'), `${mirror.baseUrl}/model.gguf`], log: captureLogger().log }));
    expect(r.source).toBe(path.join(root, 'model.gguf'));
    expect(mirror.requests).toEqual([]);
  });

  it('is idempotent: a second run with the manifest in place makes no request at all', async () => {
    const dest = freshDest();
    await fetchModel(opts(dest, { log: captureLogger().log }));
    const m = await readManifest(dest);
    expect(m).toMatchObject({ file: 'model.gguf', bytes: SIZE, sha256: file.sha256, source: `${mirror.baseUrl}/model.gguf`, gguf: null });
    await settledRequests(mirror, 'model.gguf', 1);
    mirror.requests.length = 0;
    const { log, text } = captureLogger();
    // even with an unreachable first source: nothing is contacted
    const r = await fetchModel(opts(dest, { urls: ['http://no-such-host.invalid/x.gguf', `${mirror.baseUrl}/model.gguf`], log }));
    expect(r.downloaded).toBe(false);
    expect(r.source).toBeNull();
    expect(text()).toMatch(/already in place and verified/);
    await new Promise((res) => setTimeout(res, 200));
    expect(mirror.requests).toEqual([]);
  });

  it('a verified file without a manifest is hashed locally, not downloaded again', async () => {
    const dest = freshDest();
    await mkdir(path.dirname(dest), { recursive: true });
    await writeFile(dest, file.data);
    const r = await fetchModel(opts(dest, { log: captureLogger().log }));
    expect(r.downloaded).toBe(false);
    expect(await readManifest(dest)).toMatchObject({ sha256: file.sha256, bytes: SIZE });
    expect(mirror.requests).toEqual([]);
  });

  it('replaces a different file at dest only after the new one is verified', async () => {
    const dest = freshDest();
    await mkdir(path.dirname(dest), { recursive: true });
    await writeFile(dest, 'an older model');
    mirror.setFault('model.gguf', { corrupt: true });
    await expectTaskError(fetchModel(opts(dest, { log: captureLogger().log })));
    expect(await readFile(dest, 'utf8')).toBe('an older model');
    mirror.setFault('model.gguf', undefined);
    await fetchModel(opts(dest, { log: captureLogger().log }));
    expect((await readFile(dest)).equals(file.data)).toBe(true);
  });
});

describe('fetchModel: disk space', () => {
  it('refuses before downloading when statfs shows too little room, naming the path, needed and free bytes', async () => {
    const dest = freshDest();
    const e = await expectTaskError(
      fetchModel(opts(dest, { marginBytes: 1000, statfs: async () => ({ bavail: 100, bsize: 4096 }), log: captureLogger().log })),
    );
    expect(e.exitCode).toBe(ExitCode.environment);
    expect(e.message).toContain(`not enough disk space in ${path.dirname(dest)}`);
    expect(e.message).toContain(`need ${SIZE + 1000} bytes`);
    expect(e.message).toContain('only 409600 bytes');
    expect(mirror.requests).toEqual([]);
  });

  it('counts the bytes already on disk: a resumed download needs only the rest', async () => {
    const dest = freshDest();
    await mkdir(path.dirname(dest), { recursive: true });
    await writeFile(`${dest}.partial`, file.data.subarray(0, SIZE - 100_000));
    const r = await fetchModel(opts(dest, { marginBytes: 0, statfs: async () => ({ bavail: 100_000, bsize: 1 }), log: captureLogger().log }));
    expect(r.sha256).toBe(file.sha256);
  });

  describe('on a real 2 MiB tmpfs (when this runs as root and may mount; else skipped)', () => {
    let mnt: string;
    let mounted = false;
    beforeAll(async () => {
      mnt = await tempDir('tmpfs');
      if (process.getuid?.() === 0) mounted = (await $({ nothrow: true, quiet: true })`mount -t tmpfs -o size=2m slm-model-fetch-test ${mnt}`).exitCode === 0;
    });
    afterAll(async () => {
      if (mounted) await $({ nothrow: true })`umount ${mnt}`;
      await rm(mnt, { recursive: true, force: true });
    });

    it('refuses up front when the size is known', async (ctx) => {
      if (!mounted) ctx.skip();
      const dest = path.join(mnt, 'a', 'model.gguf');
      const e = await expectTaskError(fetchModel(opts(dest, { log: captureLogger().log })));
      expect(e.message).toMatch(new RegExp(`not enough disk space in ${mnt}/a .* need ${SIZE + 64 * 1024 * 1024} bytes .* only \\d+ bytes`));
      expect(mirror.requests).toEqual([]);
    });

    it('maps a disk that fills up during the download to "disk full", keeping the partial file', async (ctx) => {
      if (!mounted) ctx.skip();
      const dest = path.join(mnt, 'b', 'model.gguf');
      const e = await expectTaskError(fetchModel(opts(dest, { size: undefined, marginBytes: 0, log: captureLogger().log })));
      expect(e.exitCode).toBe(ExitCode.environment);
      expect(e.message).toContain(`${mirror.baseUrl}/model.gguf: disk full (No space left on device)`);
      expect((await stat(`${dest}.partial`)).size).toBeGreaterThan(0);
      expect(await exists(dest)).toBe(false);
    });
  });
});
