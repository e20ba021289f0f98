// Test double of the inference engine (NOT the engine): records every request it receives and answers
// a few routes, including a deliberately slow server-sent-events stream.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bodyBytes: number;
}

export interface UpstreamDouble {
  port: number;
  requests: RecordedRequest[];
  /** Status the readiness routes (/health, /backend/monitor) answer. */
  setReady(ready: boolean): void;
  close(): Promise<void>;
}

export interface SlowSseOptions {
  /** Milliseconds between events (default 300). */
  intervalMs?: number;
  /** Number of events (default 10: ~3 s). */
  events?: number;
}

/**
 * Starts the double on 127.0.0.1:`port` (or a random port). Routes:
 * - `/slow-sse`: `text/event-stream`, one small `data:` event every `intervalMs`, then `data: [DONE]`
 *   (no X-Accel-Buffering header, like LocalAI: nginx itself must not buffer);
 * - `/health`, `/backend/monitor`: 200 or 503 (see setReady);
 * - `/metrics`: a Prometheus line; anything else: 200 JSON describing the request.
 */
export async function startUpstreamDouble(opts: { port?: number; sse?: SlowSseOptions } = {}): Promise<UpstreamDouble> {
  const requests: RecordedRequest[] = [];
  let ready = true;
  const intervalMs = opts.sse?.intervalMs ?? 300;
  const events = opts.sse?.events ?? 10;
  const server: Server = createServer((req, res) => {
    let bodyBytes = 0;
    req.on('data', (c: Buffer) => (bodyBytes += c.length));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes });
      const url = req.url ?? '/';
      if (url.startsWith('/slow-sse')) {
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
        let n = 0;
        const timer = setInterval(() => {
          n++;
          if (n > events) {
            clearInterval(timer);
            res.end('data: [DONE]\n\n');
            return;
          }
          res.write(`data: {"n":${n}}\n\n`);
        }, intervalMs);
        res.on('close', () => clearInterval(timer));
        return;
      }
      if (url.startsWith('/health') || url.startsWith('/backend/monitor')) {
        res.writeHead(ready ? 200 : 503, { 'Content-Type': 'application/json' });
        res.end(
          ready ? '{"status":"ok"}' : '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}',
        );
        return;
      }
      if (url.startsWith('/metrics')) {
        res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
        res.end('double_requests_total 1\n');
        return;
      }
      // Like llama-server: the engine's own permissive CORS header, which nginx must replace.
      res.writeHead(200, { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': '*' });
      res.end(JSON.stringify({ object: 'double', method: req.method, url }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    requests,
    setReady: (r) => {
      ready = r;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
