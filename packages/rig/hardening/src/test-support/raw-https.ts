// Test support: HTTP/1.1 over TLS written byte for byte (no client-side validation or URL
// normalization), so that malformed requests reach nginx exactly as an attacker would send them.
// The certificate is verified against the given CA and the SNI/host name (never rejectUnauthorized: false).
import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';

export interface RawTarget {
  /** Address to connect to (an IP). */
  address: string;
  port: number;
  /** SNI and the name the certificate is checked against. */
  servername: string;
  /** PEM of the CA to trust. */
  ca: string;
}

export interface RawResponse {
  status: number;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Body bytes as text (de-chunked). */
  body: string;
  /** Everything received, as text (for diagnostics). */
  raw: string;
}

/** Parses one HTTP/1.x response (status line, headers, body; chunked bodies de-chunked). */
export function parseResponse(raw: Buffer): RawResponse {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = end >= 0 ? text.slice(0, end) : text;
  const m = /^HTTP\/\d\.\d (\d{3})/.exec(head);
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`);
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n').slice(1)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  let body = end >= 0 ? text.slice(end + 4) : '';
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    let out = '';
    let rest = body;
    for (;;) {
      const nl = rest.indexOf('\r\n');
      if (nl < 0) break;
      const size = parseInt(rest.slice(0, nl), 16);
      if (!Number.isFinite(size) || size === 0) break;
      out += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    body = out;
  }
  return { status: Number(m[1]), headers, body: Buffer.from(body, 'latin1').toString('utf8'), raw: text };
}

/**
 * Sends `request` (the complete bytes: request line, headers, blank line, body) over TLS and reads
 * until the server closes the connection (send `Connection: close`) or `timeoutMs` passes.
 */
export function rawHttps(target: RawTarget, request: string | Buffer, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = tlsConnect({
      host: target.address,
      port: target.port,
      servername: target.servername,
      ca: target.ca,
      ALPNProtocols: ['http/1.1'],
    });
    const timer = setTimeout(() => socket.destroy(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    // write, not end: a half-closed client makes nginx abort a proxied request ("client prematurely closed").
    socket.on('secureConnect', () => socket.write(request));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e) => {
      clearTimeout(timer);
      // A reset after a complete answer (nginx closes hard after some 4xx) still counts as the answer.
      if (chunks.length > 0) {
        try {
          return resolve(parseResponse(Buffer.concat(chunks)));
        } catch {
          /* fall through */
        }
      }
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parseResponse(Buffer.concat(chunks)));
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** The same in plain text (e.g. HTTP sent to the HTTPS port, which nginx answers with its 497). */
export function rawHttp(address: string, port: number, request: string, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = netConnect({ host: address, port });
    const timer = setTimeout(() => socket.destroy(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => socket.write(request));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parseResponse(Buffer.concat(chunks)));
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** Resolves to 'open' when a TCP connection is accepted, else the error code (ECONNREFUSED, ETIMEDOUT, …). */
export function tcpProbe(address: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = netConnect({ host: address, port });
    const timer = setTimeout(() => {
      s.destroy();
      resolve('ETIMEDOUT');
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('open');
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code ?? e.message);
    });
  });
}
