import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { normalize } from 'node:path';
import { handleRequest, type MirrorState } from './mirror-serve.js';

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
  const state: MirrorState = { root, faults, requests, getCounts };
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    handleRequest(state, req, res).catch((e: unknown) => {
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
