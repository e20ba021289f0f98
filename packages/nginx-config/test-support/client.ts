// Test support: HTTPS requests that verify the server certificate against a given CA (never
// rejectUnauthorized: false), optionally resolving a test DNS name to 127.0.0.1.
import { request as httpsRequest, Agent } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { fetchOver, lookupTo } from '@slm-copilot/testbed';

export interface TlsTrust {
  /** PEM of the CA (or self-signed certificate) to trust. */
  ca: string | Buffer;
  /** Resolve every name to this address (default: the system resolver). */
  resolveTo?: string;
}

export { lookupTo };

/** A fresh agent (no keep-alive: a new TCP + TLS handshake per request). */
export function trustAgent(trust: TlsTrust): Agent {
  return new Agent({
    ca: trust.ca,
    keepAlive: false,
    ...(trust.resolveTo ? { lookup: lookupTo(trust.resolveTo) } : {}),
  });
}

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RequestOptions extends TlsTrust {
  method?: string;
  headers?: Record<string, string | number>;
  body?: string | Buffer;
  timeoutMs?: number;
  /** A client certificate and its key (PEM), for a server that asks for one (mutual TLS). */
  cert?: string;
  key?: string;
  /** Connect from this local address (e.g. 127.0.0.2: a client that is not the server itself). */
  localAddress?: string;
}

export function httpsGet(url: string, opts: RequestOptions): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: trustAgent(opts),
        ...(opts.cert !== undefined ? { cert: opts.cert, key: opts.key } : {}),
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        timeout: opts.timeoutMs ?? 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${opts.timeoutMs ?? 15_000} ms: ${url}`)));
    req.on('error', reject);
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

/**
 * THE server-sent-events splitter of the test rig: feed it chunks as they arrive, it returns the
 * events each chunk completed (an event ends with a blank line; CRLF line ends are read as LF).
 * Events are returned as their raw text (`data: {...}`, possibly several lines); what a chunk left
 * unterminated stays buffered, readable with `rest()` once the stream has ended.
 */
export interface SseParser {
  push(chunk: string): string[];
  rest(): string;
}

export function createSseParser(): SseParser {
  let buf = '';
  return {
    push(chunk) {
      buf += chunk;
      // A CR at the very end may be the first half of a CRLF split across chunks: keep it for later.
      const cut = buf.endsWith('\r') ? buf.length - 1 : buf.length;
      const text = buf.slice(0, cut).replace(/\r\n?/g, '\n');
      const events = text.split('\n\n');
      buf = events.pop()! + buf.slice(cut);
      return events;
    },
    rest: () => buf,
  };
}

/** The complete events of a whole SSE body (see {@link createSseParser}). */
export const sseEvents = (body: string): string[] => createSseParser().push(body);

export interface SseTiming {
  status: number;
  /** ms from sending the request to each `data:` event's arrival. */
  arrivals: number[];
  endMs: number;
}

/** Sends a request and timestamps every server-sent event as it arrives. */
export function sseTiming(url: string, opts: RequestOptions): Promise<SseTiming> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const arrivals: number[] = [];
    const req = httpsRequest(
      url,
      {
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: trustAgent(opts),
        ...(opts.cert !== undefined ? { cert: opts.cert, key: opts.key } : {}),
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res: IncomingMessage) => {
        const sse = createSseParser();
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          for (const event of sse.push(chunk)) if (event.startsWith('data:')) arrivals.push(performance.now() - t0);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, arrivals, endMs: performance.now() - t0 }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * A `fetch` for the openai SDK that goes through node:https with our CA: the certificate chain and
 * the host name (against the SANs) are verified as usual.
 */
export function trustingFetch(trust: TlsTrust): typeof fetch {
  return fetchOver((url, options, onResponse) =>
    httpsRequest(url, { ...options, agent: trustAgent(trust) }, onResponse),
  );
}

/** The same as {@link sseTiming} over HTTP/2 (ALPN h2), as browsers and curl use it. */
export function sseTimingH2(url: string, opts: RequestOptions): Promise<SseTiming> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const t0 = performance.now();
    const arrivals: number[] = [];
    const session = http2Connect(u.origin, {
      ca: opts.ca,
      ...(opts.resolveTo ? { lookup: lookupTo(opts.resolveTo) } : {}),
    });
    session.on('error', reject);
    const req = session.request({
      ':method': opts.method ?? 'GET',
      ':path': `${u.pathname}${u.search}`,
      ...opts.headers,
    });
    let status = 0;
    const sse = createSseParser();
    req.setEncoding('utf8');
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (chunk: string) => {
      for (const event of sse.push(chunk)) if (event.startsWith('data:')) arrivals.push(performance.now() - t0);
    });
    req.on('end', () => {
      session.close();
      resolve({ status, arrivals, endMs: performance.now() - t0 });
    });
    req.on('error', reject);
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.close());
    req.end(opts.body);
  });
}
