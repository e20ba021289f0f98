// Test helpers of model-fetch (never shipped): this package's tests and the rig import them as
// `@slm-copilot/model-fetch/test-support`.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createLogger, type Logger } from '@slm-copilot/task-kit';
import type { Mirror, MirrorRequest } from '@slm-copilot/testbed';

export const PACKAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(PACKAGE_DIR, 'src', 'cli.ts');

/** A logger that keeps its lines (no colours, no timestamps) so tests can assert on them. */
export function captureLogger(): { log: Logger; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const log = createLogger({ stream, color: false, timestamps: false, level: 'debug' });
  return { log, lines, text: () => lines.join('\n') };
}

export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `model-fetch-${prefix}-`));
}

export const sha256Of = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Writes `bytes` random bytes; returns them with their SHA-256. */
export async function randomFile(file: string, bytes: number): Promise<{ data: Buffer; sha256: string; size: number }> {
  const data = randomBytes(bytes);
  await writeFile(file, data);
  return { data, sha256: sha256Of(data), size: bytes };
}

/**
 * A minimal valid GGUF v3 header (architecture `llama`, the keys the manifest needs, no tensors),
 * as written by llama.cpp's gguf writer: little-endian counts, u64-length strings, typed values.
 */
export function ggufHeader(): Buffer {
  const str = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(b.length));
    return Buffer.concat([len, b]);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    return b;
  };
  const GGUF_TYPE_UINT32 = 4;
  const GGUF_TYPE_STRING = 8;
  const kv: Array<[string, number | string]> = [
    ['general.architecture', 'llama'],
    ['llama.context_length', 4096],
    ['llama.block_count', 2],
    ['llama.embedding_length', 64],
    ['llama.attention.head_count', 4],
  ];
  const value = (v: number | string) =>
    typeof v === 'string'
      ? Buffer.concat([u32(GGUF_TYPE_STRING), str(v)])
      : Buffer.concat([u32(GGUF_TYPE_UINT32), u32(v)]);
  const body = kv.map(([k, v]) => Buffer.concat([str(k), value(v)]));
  return Buffer.concat([Buffer.from('GGUF', 'latin1'), u32(3), u64(0), u64(kv.length), ...body]);
}

/** A `bytes`-long file that parses as GGUF: the header above, then random bytes. */
export async function randomGguf(file: string, bytes: number): Promise<{ data: Buffer; sha256: string; size: number }> {
  const header = ggufHeader();
  const data = Buffer.concat([header, randomBytes(bytes - header.length)]);
  await writeFile(file, data);
  return { data, sha256: sha256Of(data), size: bytes };
}

/** The mirror logs a request when the server side of the response closes, a moment after the client is done. */
export async function settledRequests(mirror: Mirror, name: string, atLeast = 0): Promise<MirrorRequest[]> {
  const pick = () => mirror.requests.filter((q) => q.path === `/${name}`);
  for (let i = 0; i < 100 && pick().length < atLeast; i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 50));
  return pick();
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the real CLI (TypeScript source through tsx's loader, one process: no wrapper to outlive it). */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', CLI, ...args], {
    cwd: PACKAGE_DIR,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliRun>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done, output: () => ({ stdout, stderr }) };
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return startCli(args, env).done;
}

export interface FakeHubFile {
  path: string;
  size: number;
  /** SHA-256 for an LFS file; omit for a small non-LFS file. */
  sha256?: string;
  /** Where `/<repo>/resolve/<commit>/<path>` redirects (as the real hub redirects to its CDN). */
  redirectTo?: string;
}

export interface FakeHubRepo {
  repo: string;
  /** branch/tag -> commit id */
  refs: Record<string, string>;
  files: FakeHubFile[];
}

/**
 * TEST DOUBLE of the Hugging Face hub API: `GET /api/models/<repo>/revision/<rev>` answers
 * `{ id, sha }` and `GET /api/models/<repo>/tree/<commit>` answers the file list in the hub's shape
 * (`type`, `oid`, `size`, `path`, `lfs: { oid, size, pointerSize }`), split over two pages linked by a
 * `Link: <…>; rel="next"` header. Everything else is a 404 JSON error, as on the hub.
 */
export async function startFakeHub(repos: FakeHubRepo[]) {
  const requests: string[] = [];
  const notFound = (res: ServerResponse, what: string) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: `${what} not found` }));
  };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://hub.test');
    requests.push(`${req.method} ${url.pathname}${url.search}`);
    for (const r of repos) {
      const api = `/api/models/${r.repo}/`;
      const commits = new Set(Object.values(r.refs));
      const commitOf = (rev: string) => r.refs[rev] ?? (commits.has(rev) ? rev : undefined);
      if (url.pathname.startsWith(`${api}revision/`)) {
        const sha = commitOf(decodeURIComponent(url.pathname.slice(`${api}revision/`.length)));
        if (!sha) return notFound(res, 'revision');
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ _id: 'x', id: r.repo, sha, private: false }));
      }
      if (url.pathname.startsWith(`${api}tree/`)) {
        const sha = commitOf(decodeURIComponent(url.pathname.slice(`${api}tree/`.length)));
        if (!sha) return notFound(res, 'revision');
        const entries = r.files.map((f) => ({
          type: 'file',
          oid: createHash('sha1').update(f.path).digest('hex'),
          size: f.size,
          path: f.path,
          ...(f.sha256 ? { lfs: { oid: f.sha256, size: f.size, pointerSize: 134 } } : {}),
        }));
        const page = url.searchParams.get('cursor') === 'p2' ? 2 : 1;
        const half = Math.ceil(entries.length / 2);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (page === 1 && entries.length > 1) headers.link = `<${url.pathname}?cursor=p2>; rel="next"`;
        res.writeHead(200, headers);
        return res.end(JSON.stringify(page === 1 ? entries.slice(0, half) : entries.slice(half)));
      }
      const resolvePrefix = `/${r.repo}/resolve/`;
      if (url.pathname.startsWith(resolvePrefix)) {
        const [rev, ...rest] = url.pathname.slice(resolvePrefix.length).split('/');
        const file = r.files.find((f) => f.path === rest.map(decodeURIComponent).join('/'));
        if (!commitOf(decodeURIComponent(rev ?? '')) || !file?.redirectTo) return notFound(res, 'entry');
        res.writeHead(302, { location: file.redirectTo });
        return res.end();
      }
    }
    notFound(res, 'repository');
  };
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
