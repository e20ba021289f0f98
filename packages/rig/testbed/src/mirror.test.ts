import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { parseRange } from './mirror-serve.js';
import { startMirror, type Mirror } from './mirror.js';

const SIZE = 256 * 1024;
let dir: string;
let data: Buffer;
let mirror: Mirror;

/** Raw GET/HEAD that reports what arrived even when the server cuts the connection. */
function rawGet(url: string, opts: { method?: string; range?: string } = {}) {
  return new Promise<{
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: Buffer;
    aborted: boolean;
  }>((resolve, reject) => {
    const req = request(
      url,
      { method: opts.method ?? 'GET', headers: opts.range ? { Range: opts.range } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        let aborted = false;
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('aborted', () => (aborted = true));
        res.on('error', () => (aborted = true));
        res.on('close', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            aborted: aborted || !res.complete,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The request log is written when the server side of a response closes, a moment after the client got it. */
async function logsFor(path: string, n: number) {
  for (let i = 0; i < 100 && mirror.requests.filter((q) => q.path === path).length < n; i++)
    await new Promise((r) => setTimeout(r, 20));
  return mirror.requests.filter((q) => q.path === path);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'testbed-mirror-'));
  data = randomBytes(SIZE);
  const names = [
    'plain.bin',
    'drop.bin',
    'slow.bin',
    'gone.bin',
    'bad.bin',
    'late.bin',
    'err.bin',
    'norange.bin',
    'reset.bin',
  ];
  for (const name of names) await writeFile(join(dir, name), data);
  await writeFile(join(dir, 'empty.bin'), Buffer.alloc(0));
  mirror = await startMirror({
    root: dir,
    faults: {
      'drop.bin': { dropAfterBytes: 1000, dropRequests: 2 },
      'slow.bin': { bytesPerSecond: 64 * 1024 },
      'gone.bin': { status404: true },
      'bad.bin': { corrupt: [0, 100_000] },
      'late.bin': { delayMs: 400 },
      'err.bin': { status: 503 },
      'norange.bin': { ignoreRange: true },
      'reset.bin': { resetAfterBytes: 5000, dropRequests: 1 },
    },
  });
});

afterAll(async () => {
  await mirror?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('parseRange', () => {
  it('parses the forms of a single byte range', () => {
    expect(parseRange(undefined, 100)).toBeNull();
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=50-1000', 100)).toEqual({ start: 50, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-1,5-6', 100)).toBeNull();
    expect(parseRange('items=0-1', 100)).toBeNull();
  });
});

describe('mirror', () => {
  it('serves a whole file with 200, Content-Length and Accept-Ranges', async () => {
    const r = await fetch(`${mirror.baseUrl}/plain.bin`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe(String(SIZE));
    expect(r.headers.get('accept-ranges')).toBe('bytes');
    expect(sha(Buffer.from(await r.arrayBuffer()))).toBe(sha(data));
  });

  it('answers HEAD with the headers and no body', async () => {
    const r = await rawGet(`${mirror.baseUrl}/plain.bin`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(SIZE));
    expect(r.body.length).toBe(0);
    const log = (await logsFor('/plain.bin', 2)).at(-1)!;
    expect(log).toMatchObject({ method: 'HEAD', path: '/plain.bin', status: 200, bytes: 0 });
  });

  it('serves ranges with 206 and Content-Range', async () => {
    const r = await fetch(`${mirror.baseUrl}/plain.bin`, { headers: { Range: 'bytes=1000-1999' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(`bytes 1000-1999/${SIZE}`);
    expect(r.headers.get('content-length')).toBe('1000');
    expect(Buffer.from(await r.arrayBuffer()).equals(data.subarray(1000, 2000))).toBe(true);

    const open = await fetch(`${mirror.baseUrl}/plain.bin`, { headers: { Range: `bytes=${SIZE - 10}-` } });
    expect(open.status).toBe(206);
    expect(Buffer.from(await open.arrayBuffer()).equals(data.subarray(SIZE - 10))).toBe(true);

    const suffix = await fetch(`${mirror.baseUrl}/plain.bin`, { headers: { Range: 'bytes=-5' } });
    expect(suffix.status).toBe(206);
    expect(suffix.headers.get('content-range')).toBe(`bytes ${SIZE - 5}-${SIZE - 1}/${SIZE}`);
    expect(Buffer.from(await suffix.arrayBuffer()).equals(data.subarray(SIZE - 5))).toBe(true);

    await logsFor('/plain.bin', 5);
    const log = mirror.requests.find((q) => q.range === 'bytes=1000-1999');
    expect(log).toMatchObject({ path: '/plain.bin', range: 'bytes=1000-1999', status: 206, bytes: 1000 });
  });

  it('answers 416 with Content-Range bytes */size for an unsatisfiable range', async () => {
    const r = await fetch(`${mirror.baseUrl}/plain.bin`, { headers: { Range: `bytes=${SIZE}-` } });
    expect(r.status).toBe(416);
    expect(r.headers.get('content-range')).toBe(`bytes */${SIZE}`);
    await r.arrayBuffer();
    const e = await fetch(`${mirror.baseUrl}/empty.bin`, { headers: { Range: 'bytes=0-' } });
    expect(e.status).toBe(416);
    await e.arrayBuffer();
  });

  it('answers 404 for missing files and paths outside the root', async () => {
    expect((await fetch(`${mirror.baseUrl}/nope.bin`)).status).toBe(404);
    const trav = await rawGet(`${mirror.baseUrl}/..%2F..%2Fetc%2Fpasswd`);
    expect(trav.status).toBe(404);
  });

  it('fault dropAfterBytes: cuts the first K GETs after N body bytes, then serves normally', async () => {
    const first = await rawGet(`${mirror.baseUrl}/drop.bin`);
    expect(first.status).toBe(200);
    expect(first.aborted).toBe(true);
    expect(first.body.length).toBe(1000);
    const second = await rawGet(`${mirror.baseUrl}/drop.bin`, { range: 'bytes=1000-' });
    expect(second.status).toBe(206);
    expect(second.aborted).toBe(true);
    expect(second.body.length).toBe(1000);
    expect(second.body.equals(data.subarray(1000, 2000))).toBe(true);
    const third = await rawGet(`${mirror.baseUrl}/drop.bin`, { range: 'bytes=2000-' });
    expect(third.aborted).toBe(false);
    expect(Buffer.concat([first.body, second.body, third.body]).equals(data)).toBe(true);
    const logs = await logsFor('/drop.bin', 3);
    expect(logs.map((q) => [q.status, q.dropped])).toEqual([
      [200, true],
      [206, true],
      [206, false],
    ]);
  });

  it('fault bytesPerSecond: throttles the body', async () => {
    const t0 = performance.now();
    const r = await fetch(`${mirror.baseUrl}/slow.bin`, { headers: { Range: 'bytes=0-65535' } });
    const body = Buffer.from(await r.arrayBuffer());
    const seconds = (performance.now() - t0) / 1000;
    expect(body.equals(data.subarray(0, 65536))).toBe(true);
    // 64 KiB at 64 KiB/s: about 1 s (the first chunk goes out at once); unthrottled it is ~1 ms.
    expect(seconds).toBeGreaterThan(0.7);
  });

  it('fault status404 and status', async () => {
    const r = await fetch(`${mirror.baseUrl}/gone.bin`);
    expect(r.status).toBe(404);
    await r.arrayBuffer();
    const h = await rawGet(`${mirror.baseUrl}/gone.bin`, { method: 'HEAD' });
    expect(h.status).toBe(404);
    const e = await fetch(`${mirror.baseUrl}/err.bin`);
    expect(e.status).toBe(503);
    await e.arrayBuffer();
  });

  it('fault corrupt: flips the chosen bytes, also inside ranges', async () => {
    const r = await fetch(`${mirror.baseUrl}/bad.bin`);
    const body = Buffer.from(await r.arrayBuffer());
    expect(body.length).toBe(SIZE);
    expect(sha(body)).not.toBe(sha(data));
    const diff = [...body.keys()].filter((i) => body[i] !== data[i]);
    expect(diff).toEqual([0, 100_000]);
    expect(body[100_000]).toBe(data[100_000]! ^ 0xff);
    const part = Buffer.from(
      await (await fetch(`${mirror.baseUrl}/bad.bin`, { headers: { Range: 'bytes=99990-100009' } })).arrayBuffer(),
    );
    expect(part[10]).toBe(data[100_000]! ^ 0xff);
    expect(part.subarray(0, 10).equals(data.subarray(99_990, 100_000))).toBe(true);
  });

  it('fault delayMs: delays the response headers', async () => {
    const t0 = performance.now();
    const r = await fetch(`${mirror.baseUrl}/late.bin`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(380);
  });

  it('setFault changes faults while running', async () => {
    mirror.setFault('plain.bin', { status404: true });
    expect((await fetch(`${mirror.baseUrl}/plain.bin`, { method: 'HEAD' })).status).toBe(404);
    mirror.setFault('plain.bin', undefined);
    expect((await fetch(`${mirror.baseUrl}/plain.bin`, { method: 'HEAD' })).status).toBe(200);
  });

  it('fault ignoreRange: a Range request gets 200 and the whole file, as from a server without ranges', async () => {
    const r = await rawGet(`${mirror.baseUrl}/norange.bin`, { range: 'bytes=1000-' });
    expect(r.status).toBe(200);
    expect(r.headers['content-range']).toBeUndefined();
    expect(r.body.equals(data)).toBe(true);
    const log = (await logsFor('/norange.bin', 1)).at(-1)!;
    expect(log).toMatchObject({ range: 'bytes=1000-', status: 200, bytes: SIZE });
  });

  // Mutation check (tried by hand): destroy() instead of resetAndDestroy() makes this fail ("Connection closed").
  it('fault resetAfterBytes: a TCP reset ("Connection reset by peer") after N body bytes, first K GETs', async () => {
    // wget (what model-fetch drives) tells the two apart: "Connection reset by peer" vs "Connection closed"
    const wget = $({ nothrow: true, quiet: true, env: { ...process.env, LC_ALL: 'C' } });
    const first = await wget`wget -O /dev/null --tries=1 ${mirror.baseUrl}/reset.bin`;
    expect(first.exitCode).toBe(4);
    expect(first.stderr).toMatch(new RegExp(`Read error at byte 5000/${SIZE} \\(Connection reset by peer\\)`));
    const next = await rawGet(`${mirror.baseUrl}/reset.bin`);
    expect(next.aborted).toBe(false);
    expect(next.body.equals(data)).toBe(true);
    const logs = await logsFor('/reset.bin', 2);
    expect(logs.map((q) => [q.bytes, q.dropped])).toEqual([
      [5000, true],
      [SIZE, false],
    ]);
  });

  it('refuse(ms): connections to its port are refused, then it listens on the same port again', async () => {
    const m = await startMirror({ root: dir });
    try {
      await m.refuse();
      const refused = await fetch(`${m.baseUrl}/plain.bin`).then(
        () => 'connected',
        (e: { cause?: { code?: string } }) => e.cause?.code,
      );
      expect(refused).toBe('ECONNREFUSED');
      await m.listen();
      expect((await fetch(`${m.baseUrl}/plain.bin`, { method: 'HEAD' })).status).toBe(200);
      await m.refuse(300);
      const t0 = performance.now();
      let status = 0;
      while (status === 0 && performance.now() - t0 < 5000) {
        status = await fetch(`${m.baseUrl}/plain.bin`, { method: 'HEAD' }).then(
          (r) => r.status,
          () => 0,
        );
        if (status === 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toBe(200);
    } finally {
      await m.stop();
    }
  });
});
