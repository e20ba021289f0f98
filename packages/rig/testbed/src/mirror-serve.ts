// One request to the test mirror: which file, which range, and the faults injected into its answer
// (error statuses, delays, dropped or reset connections, flipped bytes, throttling).
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, normalize, sep } from 'node:path';
import type { MirrorFault, MirrorRequest } from './mirror.js';

/** What every request of one mirror shares. */
export interface MirrorState {
  /** Normalized root directory. */
  root: string;
  faults: Record<string, MirrorFault>;
  requests: MirrorRequest[];
  /** GET requests seen per file name (for `dropRequests`). */
  getCounts: Map<string, number>;
}

type ByteRange = { start: number; end: number } | 'unsatisfiable' | null;

/** Parses a single `bytes=` range; multi-range requests are served in full (allowed by RFC 9110). */
export function parseRange(header: string | undefined, size: number): ByteRange {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null;
  const [, a, b] = m;
  if (a === '' && b === '') return null;
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return null; // invalid: ignore the header
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One request's answer in progress: its log entry is filled as bytes go out. */
interface Exchange {
  method: string;
  res: ServerResponse;
  entry: MirrorRequest;
}

function plain(x: Exchange, status: number, body: string, headers: Record<string, string> = {}): void {
  x.res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    ...headers,
  });
  if (x.method === 'HEAD') x.res.end();
  else {
    x.entry.bytes = Buffer.byteLength(body);
    x.res.end(body);
  }
}

/** Where the connection is cut (body bytes; Infinity: never) and whether with a TCP RST. */
function cutPoint(state: MirrorState, name: string, fault: MirrorFault, method: string) {
  const cutAfter = fault.resetAfterBytes ?? fault.dropAfterBytes;
  if (cutAfter === undefined || method !== 'GET') return { dropAt: Infinity, reset: false };
  const n = (state.getCounts.get(name) ?? 0) + 1;
  state.getCounts.set(name, n);
  if (n > (fault.dropRequests ?? 1)) return { dropAt: Infinity, reset: false };
  return { dropAt: cutAfter, reset: fault.resetAfterBytes !== undefined };
}

/** Streams bytes `start..end` of `file`, flipping, throttling and cutting as the fault says. */
async function streamBody(
  x: Exchange,
  file: string,
  range: { start: number; end: number; size: number },
  fault: MirrorFault,
  dropAt: number,
  cut: () => void,
): Promise<void> {
  const { res, entry } = x;
  const { start, end, size } = range;
  const flips = fault.corrupt === true ? [Math.floor(size / 2)] : Array.isArray(fault.corrupt) ? fault.corrupt : [];
  const bps = fault.bytesPerSecond;
  const chunkSize = bps ? Math.max(1, Math.min(64 * 1024, Math.floor(bps / 10))) : 64 * 1024;
  const stream = createReadStream(file, { start, end, highWaterMark: chunkSize });
  let offset = start; // absolute file offset of the next byte
  const t0 = performance.now();
  try {
    for await (const c of stream) {
      if (res.destroyed) break;
      let chunk = c as Buffer;
      for (const f of flips) {
        if (f >= offset && f < offset + chunk.length) {
          if (chunk === c) chunk = Buffer.from(chunk);
          chunk[f - offset] = (chunk[f - offset] ?? 0) ^ 0xff;
        }
      }
      offset += chunk.length;
      if (entry.bytes + chunk.length >= dropAt) {
        const part = chunk.subarray(0, dropAt - entry.bytes);
        entry.bytes += part.length;
        await new Promise<void>((resolve) => res.write(part, () => resolve()));
        cut();
        break;
      }
      entry.bytes += chunk.length;
      if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve).once('close', resolve));
      if (bps) {
        const due = (entry.bytes / bps) * 1000 - (performance.now() - t0);
        if (due > 0) await sleep(due);
      }
    }
  } finally {
    stream.destroy();
  }
}

/** The file's answer: 200/206/416 headers, then its body with the file's faults. */
async function serveFile(state: MirrorState, x: Exchange, name: string, fault: MirrorFault, file: string) {
  const { res, method } = x;
  const st = await stat(file).catch(() => undefined);
  if (!st?.isFile()) return plain(x, 404, 'not found\n');
  const size = st.size;
  const header = x.entry.range;
  const r = fault.ignoreRange ? null : parseRange(typeof header === 'string' ? header : undefined, size);
  const common = {
    'Accept-Ranges': 'bytes',
    'Content-Type': 'application/octet-stream',
    'Last-Modified': st.mtime.toUTCString(),
    ETag: `"${size.toString(16)}-${Math.floor(st.mtime.getTime()).toString(16)}"`,
  };
  if (r === 'unsatisfiable') {
    res.writeHead(416, { ...common, 'Content-Range': `bytes */${size}`, 'Content-Length': '0' });
    res.end();
    return;
  }
  const start = r ? r.start : 0;
  const end = r ? r.end : size - 1;
  const length = size === 0 ? 0 : end - start + 1;
  const headers: Record<string, string> = { ...common, 'Content-Length': String(length) };
  if (r) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
  res.writeHead(r ? 206 : 200, headers);
  if (method === 'HEAD' || length === 0) {
    res.end();
    return;
  }
  const { dropAt, reset } = cutPoint(state, name, fault, method);
  const cut = () => {
    x.entry.dropped = true;
    // resetAndDestroy sends a TCP RST (the client reads ECONNRESET); destroy alone closes with a FIN.
    if (reset && res.socket) res.socket.resetAndDestroy();
    else res.socket?.destroy();
    res.destroy();
  };
  if (dropAt === 0) {
    res.flushHeaders();
    // an empty socket write calls back once the headers before it reached the kernel
    await new Promise<void>((resolve) => (res.socket ? res.socket.write('', () => resolve()) : resolve()));
    cut();
    return;
  }
  await streamBody(x, file, { start, end, size }, fault, dropAt, cut);
  if (!res.destroyed) res.end();
}

/** Answers one request; the finished request is appended to `state.requests` when its response closes. */
export async function handleRequest(state: MirrorState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
  const range = req.headers.range ?? null;
  const entry: MirrorRequest = { method, path: rawPath, range, status: 0, bytes: 0, dropped: false };
  const x: Exchange = { method, res, entry };
  let logged = false;
  res.on('close', () => {
    if (logged) return;
    logged = true;
    entry.status = res.statusCode;
    state.requests.push(entry);
  });
  let name: string;
  try {
    name = decodeURIComponent(rawPath).replace(/^\/+/, '');
  } catch {
    return plain(x, 400, 'bad path\n');
  }
  const fault = state.faults[name] ?? {};
  if (fault.delayMs) await sleep(fault.delayMs);
  if (method !== 'GET' && method !== 'HEAD') return plain(x, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });
  const file = normalize(join(state.root, name));
  if (!name || (file !== state.root && !file.startsWith(state.root + sep))) return plain(x, 404, 'not found\n');
  if (fault.status404) return plain(x, 404, 'not found (injected)\n');
  if (fault.status) return plain(x, fault.status, `error ${fault.status} (injected)\n`);
  await serveFile(state, x, name, fault, file);
}
