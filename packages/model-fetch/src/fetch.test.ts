import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, freePort, TaskError } from '@slm-copilot/task-kit';
import { startMirror, type Mirror } from '@slm-copilot/testbed';
import { $ } from 'zx';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { classifyWgetFailure, fetchModel, mirrorSources, type FetchModelOptions } from './fetch.js';
import { readManifest } from './manifest.js';
import { captureLogger, randomFile, randomGguf, settledRequests, tempDir } from '../test-support/index.js';

const SIZE = 4 * 1024 * 1024;
let root: string; // mirror root
let work: string; // download destinations
let mirror: Mirror;
let file: { data: Buffer; sha256: string; size: number };
let n = 0;

beforeAll(async () => {
  root = await tempDir('mirror');
  work = await tempDir('dest');
  file = await randomGguf(path.join(root, 'model.gguf'), SIZE);
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

const exists = (f: string) =>
  stat(f).then(
    () => true,
    () => false,
  );

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
      expect.arrayContaining([
        'check existing file',
        'check free disk space',
        'finish streamed SHA-256',
        'install',
        'write manifest',
      ]),
    );
    expect(text()).toMatch(/install: done in \d+ ms/);
  });

  it('keeps the partial file when it gives up, and the next run resumes it (hash-after mode)', async () => {
    mirror.setFault('model.gguf', { dropAfterBytes: 1_000_000 });
    const dest = freshDest();
    const first = await expectTaskError(fetchModel(opts(dest, { tries: 1, log: captureLogger().log })));
    expect(first.exitCode).toBe(ExitCode.network);
    expect(first.message).toContain(`${mirror.baseUrl}/model.gguf`);
    expect(first.message).toMatch(/connection dropped at byte 1000000; no retry left \(1 of 1 tries failed/);
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
  // Mutation check (tried by hand): restoring the old "retry that source once from scratch" loop makes
  // this fail (two full GETs of the same source).
  it('rejects wrong bytes: never installed at dest, kept aside as .bad, no source downloaded twice', async () => {
    mirror.setFault('model.gguf', { corrupt: true });
    const dest = freshDest();
    const { log, text } = captureLogger();
    const e = await expectTaskError(fetchModel(opts(dest, { log })));
    expect(e.exitCode).toBe(ExitCode.integrity);
    expect(e.message).toContain(`${mirror.baseUrl}/model.gguf: checksum mismatch`);
    expect(e.hint).toContain(`kept as ${dest}.bad (${SIZE} bytes)`);
    expect(e.hint).toMatch(/no source is downloaded twice/);
    expect(await exists(dest)).toBe(false);
    expect(await exists(`${dest}.manifest.json`)).toBe(false);
    expect(await exists(`${dest}.partial`)).toBe(false);
    const kept = await readFile(`${dest}.bad`);
    expect(kept.length).toBe(SIZE);
    expect(kept.equals(file.data)).toBe(false);
    expect(text()).not.toMatch(/retry/i);
    await new Promise((r) => setTimeout(r, 200));
    const reqs = await settledRequests(mirror, 'model.gguf', 1);
    expect(reqs.map((q) => [q.range, q.status])).toEqual([[null, 200]]);
  });

  it('falls back to the next source after a corrupt mirror; the .bad copy goes once a good one is in', async () => {
    const good = await startMirror({ root });
    try {
      mirror.setFault('model.gguf', { corrupt: [10] });
      const dest = freshDest();
      const { log, text } = captureLogger();
      const r = await fetchModel(
        opts(dest, { urls: [`${mirror.baseUrl}/model.gguf`, `${good.baseUrl}/model.gguf`], log }),
      );
      expect(r.source).toBe(`${good.baseUrl}/model.gguf`);
      expect(text()).toMatch(/checksum mismatch: .*; trying the next source/);
      expect((await settledRequests(mirror, 'model.gguf', 1)).map((q) => q.range)).toEqual([null]);
      expect((await settledRequests(good, 'model.gguf', 1)).map((q) => q.range)).toEqual([null]);
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

  it('timeout', async () => {
    // its own mirror: the delayed response must not land in the shared request log later
    const slow = await startMirror({ root, faults: { 'model.gguf': { delayMs: 4000 } } });
    try {
      const url = `${slow.baseUrl}/model.gguf`;
      const e = await expectTaskError(
        fetchModel(opts(freshDest(), { urls: [url], timeoutSec: 1, tries: 1, log: captureLogger().log })),
      );
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
    expect(
      classifyWgetFailure(
        8,
        null,
        'HTTP request sent, awaiting response... 503 Service Unavailable\n' +
          '2026-11-28 05:39:03 ERROR 503: Service Unavailable.\n',
      ),
    ).toEqual({
      kind: 'http',
      cause: 'HTTP 503 Service Unavailable',
      status: 503,
    });
    expect(classifyWgetFailure(8, null, 'ERROR 403: Forbidden.\n').kind).toBe('auth');
    expect(classifyWgetFailure(3, null, "Cannot write to 'x' (No space left on device).\n").kind).toBe('disk-full');
    expect(
      classifyWgetFailure(
        8,
        null,
        "Continued download failed on this file, which conflicts with `-c'.\nRefusing to truncate existing file 'x'.\n",
      ).kind,
    ).toBe('no-resume');
    expect(classifyWgetFailure(null, 'SIGKILL', '')).toEqual({ kind: 'killed', cause: 'wget was killed by SIGKILL' });
    expect(classifyWgetFailure(4, null, 'Connecting to 10.0.0.1:80... failed: No route to host.\n').kind).toBe(
      'network',
    );
    expect(classifyWgetFailure(4, null, 'Connecting to 127.0.0.1:9... failed: Connection refused.\n').kind).toBe(
      'refused',
    );
    expect(
      classifyWgetFailure(4, null, ' - Read error at byte 100000/4194304 (Connection reset by peer). Giving up.\n'),
    ).toEqual({
      kind: 'reset',
      cause: 'connection reset by peer at byte 100000',
    });
    expect(classifyWgetFailure(4, null, ' - Connection closed at byte 1500000. Giving up.\n')).toEqual({
      kind: 'dropped',
      cause: 'connection dropped at byte 1500000',
    });
  });
});

describe('fetchModel: sources', () => {
  it('tries mirrors in order: a 404 on the first mirror, the second one serves the file', async () => {
    const second = await startMirror({ root });
    try {
      mirror.setFault('model.gguf', { status404: true });
      const dest = freshDest();
      const { log, text } = captureLogger();
      const urls = [
        ...mirrorSources([mirror.baseUrl, `${second.baseUrl}/`], 'model.gguf'),
        'http://no-such-host.invalid/upstream/model.gguf',
      ];
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
    const r = await fetchModel(
      opts(dest, {
        urls: [...mirrorSources([path.join(root, 'nope'), root], 'model.gguf'), `${mirror.baseUrl}/model.gguf`],
        log: captureLogger().log,
      }),
    );
    expect(r.source).toBe(path.join(root, 'model.gguf'));
    expect(mirror.requests).toEqual([]);
  });

  it('is idempotent: a second run with the manifest in place makes no request at all', async () => {
    const dest = freshDest();
    await fetchModel(opts(dest, { log: captureLogger().log }));
    const m = await readManifest(dest);
    expect(m).toMatchObject({
      file: 'model.gguf',
      bytes: SIZE,
      sha256: file.sha256,
      source: `${mirror.baseUrl}/model.gguf`,
    });
    expect(m?.gguf).toMatchObject({ architecture: 'llama', contextLength: 4096 });
    await settledRequests(mirror, 'model.gguf', 1);
    mirror.requests.length = 0;
    const { log, text } = captureLogger();
    // even with an unreachable first source: nothing is contacted
    const r = await fetchModel(
      opts(dest, { urls: ['http://no-such-host.invalid/x.gguf', `${mirror.baseUrl}/model.gguf`], log }),
    );
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

describe('fetchModel: bounded retries of refused and reset connections', () => {
  const retryLines = (text: string) => text.split('\n').filter((l) => / retry \d+\/\d+ in /.test(l));

  // Mutation check (tried by hand): removing 'refused' from isTransient (retry.ts) makes this fail at
  // the first refusal.
  it('retries "connection refused" with backoff until the server listens again', async () => {
    const late = await startMirror({ root });
    try {
      // A closed port until the first refusal has been retried (however slow the machine), then it listens again.
      await late.refuse();
      const url = `${late.baseUrl}/model.gguf`;
      const { log, text } = captureLogger();
      const fetching = fetchModel(opts(freshDest(), { urls: [url], tries: 8, waitRetrySec: 0.2, log }));
      for (let i = 0; i < 300 && retryLines(text()).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      await late.listen();
      const r = await fetching;
      expect(r.sha256).toBe(file.sha256);
      const retries = retryLines(text());
      expect(retries.length).toBeGreaterThanOrEqual(1);
      expect(retries[0]).toContain(`${url}: connection refused (nothing listening there); retry 1/7 in 200 ms`);
      if (retries[1]) expect(retries[1]).toContain('retry 2/7 in 400 ms'); // exponential
      expect((await settledRequests(late, 'model.gguf', 1)).map((q) => [q.range, q.status])).toEqual([[null, 200]]);
    } finally {
      await late.stop();
    }
  });

  it('gives up on a closed port after --tries attempts, naming the URL, the cause and the bound', async () => {
    const url = `http://127.0.0.1:${await freePort()}/model.gguf`;
    const { log, text } = captureLogger();
    const e = await expectTaskError(fetchModel(opts(freshDest(), { urls: [url], tries: 3, waitRetrySec: 0.05, log })));
    expect(e.exitCode).toBe(ExitCode.network);
    expect(e.message).toContain(
      `${url}: connection refused (nothing listening there); no retry left (3 of 3 tries failed`,
    );
    expect(retryLines(text()).map((l) => l.replace(/.* retry /, ''))).toEqual(['1/2 in 50 ms', '2/2 in 100 ms']);
  });

  it('gives up when the next retry would start after the retry window', async () => {
    const url = `http://127.0.0.1:${await freePort()}/model.gguf`;
    const { log, text } = captureLogger();
    // delays 100, 200, 400 ms (0.7 s in all); the next, 800 ms, would start past the 1 s window.
    // Mutation check (tried by hand): without the window check it runs its 100 tries (60 s delays) and times out.
    const e = await expectTaskError(
      fetchModel(opts(freshDest(), { urls: [url], tries: 100, waitRetrySec: 0.1, retryWindowSec: 1, log })),
    );
    expect(e.message).toMatch(
      /no retry left \(\d tries failed since the last progress; the next would start after the 1\.0 s retry window\)/,
    );
    // at most 3 retries fit (fewer when starting wget is slow: each attempt's own time counts too)
    expect(retryLines(text()).length).toBeLessThanOrEqual(3);
  });

  // Mutation check (tried by hand): removing 'reset' from isTransient makes this fail
  // ("connection reset by peer at byte 0").
  it('retries connections reset by the server (TCP RST), resumes one reset mid-file with a Range request', async () => {
    mirror.setFault('model.gguf', { resetAfterBytes: 0, dropRequests: 2 });
    const dest = freshDest();
    const { log, text } = captureLogger();
    const r = await fetchModel(opts(dest, { tries: 3, waitRetrySec: 0.05, log }));
    expect(r.sha256).toBe(file.sha256);
    expect(text()).toMatch(/connection reset by peer at byte 0; retry 1\/2 in 50 ms/);
    expect(text()).toMatch(/connection reset by peer at byte 0; retry 2\/2 in 100 ms/);
    expect((await settledRequests(mirror, 'model.gguf', 3)).map((q) => [q.range, q.dropped])).toEqual([
      [null, true],
      [null, true],
      [null, false],
    ]);

    mirror.requests.length = 0;
    mirror.setFault('model.gguf', { resetAfterBytes: 2_000_000 });
    const dest2 = freshDest();
    const { log: log2, text: text2 } = captureLogger();
    await fetchModel(opts(dest2, { tries: 2, waitRetrySec: 0.05, log: log2 }));
    expect((await readFile(dest2)).equals(file.data)).toBe(true);
    expect(text2()).toMatch(/connection reset by peer at byte 2000000; retry 1\/1 in 50 ms/);
    expect((await settledRequests(mirror, 'model.gguf', 2)).map((q) => [q.range, q.status])).toEqual([
      [null, 200],
      ['bytes=2000000-', 206],
    ]);
  });

  it('does not retry what will not pass (404)', async () => {
    const url = `${mirror.baseUrl}/missing.gguf`;
    const { log, text } = captureLogger();
    await expectTaskError(fetchModel(opts(freshDest(), { urls: [url], tries: 5, waitRetrySec: 0.05, log })));
    expect(retryLines(text())).toEqual([]);
    expect((await settledRequests(mirror, 'missing.gguf', 1)).length).toBe(1);
  });
});

describe('fetchModel: a server that ignores Range', () => {
  // Mutation checks (tried by hand): without the status check in runWget, wget silently restarts from 0
  // and the "ignored Range" line is missing; without `ctx.hash.restart()` on that path, the streamed hash
  // follows the deleted file and the fallback 'verify SHA-256' phase appears.
  it('is detected and said as such ("restarting from 0"); the file and its hash start over from byte 0', async () => {
    mirror.setFault('model.gguf', { dropAfterBytes: 1_500_000, ignoreRange: true });
    const dest = freshDest();
    const { log, text } = captureLogger();
    const r = await fetchModel(opts(dest, { waitRetrySec: 0.05, log }));
    expect((await readFile(dest)).equals(file.data)).toBe(true);
    expect(r.sha256).toBe(file.sha256);
    expect(text()).toContain(
      `${mirror.baseUrl}/model.gguf: server ignored Range ` +
        '(asked for bytes 1500000-, it answered 200 with the whole file): restarting from 0',
    );
    const names = r.phases.map((p) => p.name);
    expect(names).toContain('finish streamed SHA-256');
    expect(names).not.toContain('verify SHA-256');
    expect(text()).not.toMatch(/could not follow the file/);
    const reqs = await settledRequests(mirror, 'model.gguf', 3);
    expect(reqs.map((q) => [q.range, q.status])).toEqual([
      [null, 200],
      ['bytes=1500000-', 200],
      [null, 200],
    ]);
  });

  it('also for a partial file left by an earlier run', async () => {
    mirror.setFault('model.gguf', { ignoreRange: true });
    const dest = freshDest();
    await mkdir(path.dirname(dest), { recursive: true });
    await writeFile(`${dest}.partial`, file.data.subarray(0, 700_000));
    const { log, text } = captureLogger();
    const r = await fetchModel(opts(dest, { log }));
    expect(r.sha256).toBe(file.sha256);
    expect(text()).toMatch(/server ignored Range \(asked for bytes 700000-, .*\): restarting from 0/);
  });
});

describe('fetchModel: a .gguf destination must be a GGUF', () => {
  let notGguf: { data: Buffer; sha256: string; size: number };
  beforeAll(async () => {
    notGguf = await randomFile(path.join(root, 'random.bin'), 512 * 1024);
  });

  // Mutation check (tried by hand): making wantsGguf() return false installs the file and this fails.
  it('refuses a file with the right checksum that is not GGUF, naming it; kept as .bad, none installed', async () => {
    const dest = freshDest();
    const url = `${mirror.baseUrl}/random.bin`;
    const e = await expectTaskError(
      fetchModel(opts(dest, { urls: [url], sha256: notGguf.sha256, size: notGguf.size, log: captureLogger().log })),
    );
    expect(e.exitCode).toBe(ExitCode.integrity);
    expect(e.message).toContain(`model.gguf from ${url} matches the expected SHA-256 but is not a GGUF model (`);
    expect(e.message).toMatch(/GGUF magic/);
    expect(e.message).toContain(`refusing to install it as ${dest}; the file is kept as ${dest}.bad`);
    expect(await exists(dest)).toBe(false);
    expect(await exists(`${dest}.manifest.json`)).toBe(false);
    expect((await readFile(`${dest}.bad`)).equals(notGguf.data)).toBe(true);
  });

  it('the same bytes are installed under a name that does not claim to be a GGUF', async () => {
    const dest = freshDest().replace(/\.gguf$/, '.bin');
    const r = await fetchModel(
      opts(dest, {
        urls: [`${mirror.baseUrl}/random.bin`],
        sha256: notGguf.sha256,
        size: notGguf.size,
        log: captureLogger().log,
      }),
    );
    expect(r.manifest?.gguf).toBeNull();
  });

  it('refuses a non-GGUF file at a .gguf dest with the expected checksum (no manifest), with no request', async () => {
    const dest = freshDest();
    await mkdir(path.dirname(dest), { recursive: true });
    await writeFile(dest, notGguf.data);
    const e = await expectTaskError(
      fetchModel(opts(dest, { sha256: notGguf.sha256, size: notGguf.size, log: captureLogger().log })),
    );
    expect(e.message).toContain(`matches the expected SHA-256 but is not a GGUF model`);
    expect(await exists(`${dest}.manifest.json`)).toBe(false);
    expect(mirror.requests).toEqual([]);
  });
});

describe('fetchModel: disk space', () => {
  it('refuses before downloading when statfs shows too little room, naming path, needed and free bytes', async () => {
    const dest = freshDest();
    const e = await expectTaskError(
      fetchModel(
        opts(dest, { marginBytes: 1000, statfs: async () => ({ bavail: 100, bsize: 4096 }), log: captureLogger().log }),
      ),
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
    const r = await fetchModel(
      opts(dest, { marginBytes: 0, statfs: async () => ({ bavail: 100_000, bsize: 1 }), log: captureLogger().log }),
    );
    expect(r.sha256).toBe(file.sha256);
  });

  describe('on a real 2 MiB tmpfs (when this runs as root and may mount; else skipped)', () => {
    let mnt: string;
    let mounted = false;
    beforeAll(async () => {
      mnt = await tempDir('tmpfs');
      if (process.getuid?.() === 0)
        mounted =
          (await $({ nothrow: true, quiet: true })`mount -t tmpfs -o size=2m slm-model-fetch-test ${mnt}`).exitCode ===
          0;
    });
    afterAll(async () => {
      if (mounted) await $({ nothrow: true })`umount ${mnt}`;
      await rm(mnt, { recursive: true, force: true });
    });

    it('refuses up front when the size is known', async (ctx) => {
      if (!mounted) ctx.skip();
      const dest = path.join(mnt, 'a', 'model.gguf');
      const e = await expectTaskError(fetchModel(opts(dest, { log: captureLogger().log })));
      expect(e.message).toMatch(
        new RegExp(`not enough disk space in ${mnt}/a .* need ${SIZE + 64 * 1024 * 1024} bytes .* only \\d+ bytes`),
      );
      expect(mirror.requests).toEqual([]);
    });

    it('maps a disk that fills up during the download to "disk full", keeping the partial file', async (ctx) => {
      if (!mounted) ctx.skip();
      const dest = path.join(mnt, 'b', 'model.gguf');
      const e = await expectTaskError(
        fetchModel(opts(dest, { size: undefined, marginBytes: 0, log: captureLogger().log })),
      );
      expect(e.exitCode).toBe(ExitCode.environment);
      expect(e.message).toContain(`${mirror.baseUrl}/model.gguf: disk full (No space left on device)`);
      expect((await stat(`${dest}.partial`)).size).toBeGreaterThan(0);
      expect(await exists(dest)).toBe(false);
    });
  });
});
