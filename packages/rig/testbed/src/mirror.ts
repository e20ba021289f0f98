import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join, normalize, sep } from 'node:path';

/** Faults injected for one file name (the path under the mirror root, e.g. `model.gguf`). */
export interface MirrorFault {
  /** Close the connection after this many body bytes (counted from the start of the response body). */
  dropAfterBytes?: number;
  /** Reset the connection (TCP RST: "Connection reset by peer") after this many body bytes; 0: after the headers. */
  resetAfterBytes?: number;
  /** Only the first K GET requests for the file are dropped or reset (default 1). */
  dropRequests?: number;
  /** Behave like a server without range support: answer a Range request with 200 and the whole file. */
  ignoreRange?: boolean;
  /** Throttle the body to about this many bytes per second. */
  bytesPerSecond?: number;
  /** Answer 404 although the file exists. */
  status404?: boolean;
  /** Any other error status (e.g. 500, 503) instead of serving the file. */
  status?: number;
  /** Flip bytes (XOR 0xFF): `true` = the byte at the middle of the file, or a list of absolute offsets. */
  corrupt?: boolean | number[];
  /** Wait this long before sending the response headers. */
  delayMs?: number;
}

export interface MirrorRequest {
  method: string;
  /** URL path as requested, e.g. `/model.gguf`. */
  path: string;
  /** The Range header, or null. */
  range: string | null;
  status: number;
  /** Body bytes actually written. */
  bytes: number;
  /** True when a `dropAfterBytes` or `resetAfterBytes` fault cut the connection. */
  dropped: boolean;
}

export interface MirrorOptions {
  /** Directory whose files are served as `<baseUrl>/<name>`. */
  root: string;
  /** Faults per file name (relative path without leading slash). */
  faults?: Record<string, MirrorFault>;
  /** Default: a random free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
}

export interface Mirror {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  baseUrl: string;
  port: number;
  /** Log of finished requests, in completion order. */
  requests: MirrorRequest[];
  /** The live fault table (may be changed while the mirror runs). */
  faults: Record<string, MirrorFault>;
  /** Replace (or with `undefined` remove) the faults of one file. */
  setFault(name: string, fault: MirrorFault | undefined): void;
  /**
   * Stops listening, so that connections to the port are refused (ECONNREFUSED), for `ms`
   * milliseconds (then listens on the same port again), or until `listen()` when `ms` is omitted.
   */
  refuse(ms?: number): Promise<void>;
  /** Listens again on the same port after `refuse()`. */
  listen(): Promise<void>;
  stop(): Promise<void>;
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

/**
 * A static HTTP server on 127.0.0.1 for download tests: GET and HEAD, single-range requests
 * (206 + Content-Range, 416 for unsatisfiable ranges), and per-file fault injection.
 */
export async function startMirror(opts: MirrorOptions): Promise<Mirror> {
  const host = opts.host ?? '127.0.0.1';
  const root = normalize(opts.root);
  const faults: Record<string, MirrorFault> = { ...(opts.faults ?? {}) };
  const requests: MirrorRequest[] = [];
  const getCounts = new Map<string, number>();
  const sockets = new Set<Socket>();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
    const range = req.headers.range ?? null;
    const entry: MirrorRequest = { method, path: rawPath, range, status: 0, bytes: 0, dropped: false };
    let logged = false;
    const finish = () => {
      if (logged) return;
      logged = true;
      entry.status = res.statusCode;
      requests.push(entry);
    };
    res.on('close', finish);

    const plain = (status: number, body: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, {
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': String(Buffer.byteLength(body)),
        ...headers,
      });
      if (method === 'HEAD') res.end();
      else {
        entry.bytes = Buffer.byteLength(body);
        res.end(body);
      }
    };

    let name: string;
    try {
      name = decodeURIComponent(rawPath).replace(/^\/+/, '');
    } catch {
      return plain(400, 'bad path\n');
    }
    const fault = faults[name] ?? {};
    if (fault.delayMs) await sleep(fault.delayMs);
    if (method !== 'GET' && method !== 'HEAD') return plain(405, 'method not allowed\n', { Allow: 'GET, HEAD' });
    const file = normalize(join(root, name));
    if (!name || (file !== root && !file.startsWith(root + sep))) return plain(404, 'not found\n');
    if (fault.status404) return plain(404, 'not found (injected)\n');
    if (fault.status) return plain(fault.status, `error ${fault.status} (injected)\n`);
    let size: number;
    let mtime: Date;
    try {
      const st = await stat(file);
      if (!st.isFile()) return plain(404, 'not found\n');
      size = st.size;
      mtime = st.mtime;
    } catch {
      return plain(404, 'not found\n');
    }

    const r = fault.ignoreRange ? null : parseRange(typeof range === 'string' ? range : undefined, size);
    const common = {
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
      'Last-Modified': mtime.toUTCString(),
      ETag: `"${size.toString(16)}-${Math.floor(mtime.getTime()).toString(16)}"`,
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

    let dropAt = Infinity;
    let reset = false;
    const cutAfter = fault.resetAfterBytes ?? fault.dropAfterBytes;
    if (cutAfter !== undefined && method === 'GET') {
      const n = (getCounts.get(name) ?? 0) + 1;
      getCounts.set(name, n);
      if (n <= (fault.dropRequests ?? 1)) {
        dropAt = cutAfter;
        reset = fault.resetAfterBytes !== undefined;
      }
    }
    const cut = () => {
      entry.dropped = true;
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
    if (!res.destroyed) res.end();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(String(e) + '\n');
      } else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const listenOn = (p: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listenOn(opts.port ?? 0);
  const port = (server.address() as AddressInfo).port;
  let reopen: NodeJS.Timeout | undefined;
  const listen = async () => {
    clearTimeout(reopen);
    if (!server.listening) await listenOn(port);
  };
  return {
    baseUrl: `http://${host}:${port}`,
    port,
    requests,
    faults,
    setFault(name, fault) {
      if (fault) faults[name] = fault;
      else delete faults[name];
      getCounts.delete(name);
    },
    async refuse(ms) {
      // close() stops accepting at once; its callback waits for open connections, which we do not need.
      if (server.listening) server.close();
      if (ms !== undefined) reopen = setTimeout(() => void listen().catch(() => undefined), ms);
    },
    listen,
    stop: () =>
      new Promise<void>((resolve) => {
        clearTimeout(reopen);
        for (const s of sockets) s.destroy();
        if (!server.listening) return resolve();
        server.close(() => resolve());
      }),
  };
}
