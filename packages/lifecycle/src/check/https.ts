// Node's own https and tls, not the openai client: the client's fetch cannot take a per-request CA
// without undici, and the speed check needs the stream's chunks with their arrival times.
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';
import { request } from 'node:https';
import { checkServerIdentity, connect, type PeerCertificate } from 'node:tls';

/** Where the gateway is and how it is trusted. */
export interface Endpoint {
  /** `https://host:port`, no path. */
  origin: string;
  /** The name (or IP) the certificate must name. */
  host: string;
  port: number;
  /** Connect here instead of resolving `host` (the name check still uses `host`). */
  address?: string;
  /** PEM of the CA to trust; absent: the system's trusted roots. */
  ca?: Buffer;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

export interface RequestSpec {
  method?: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  json?: unknown;
  timeoutMs: number;
  /** Called with each piece of the body as it arrives (ms since the request was sent). */
  onData?: (text: string, atMs: number) => void;
}

function fixedLookup(address: string): LookupFunction {
  const family = isIP(address);
  return ((_host: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
    if (options?.all) cb(null, [{ address, family }]);
    else cb(null, address, family);
  }) as LookupFunction;
}

/** TLS options shared by the probe and every request: verify the chain, and the name against `host`. */
function tlsOptions(ep: Endpoint) {
  return {
    ...(ep.ca ? { ca: ep.ca } : {}),
    ...(isIP(ep.host) ? {} : { servername: ep.host }),
    rejectUnauthorized: true,
    checkServerIdentity: (_name: string, cert: PeerCertificate) => checkServerIdentity(ep.host, cert),
  };
}

/** One HTTPS request with a deadline for the whole exchange (headers and body). */
export function httpsRequest(ep: Endpoint, spec: RequestSpec): Promise<HttpAnswer> {
  const body = spec.json === undefined ? undefined : JSON.stringify(spec.json);
  const headers = { ...spec.headers, ...(body ? { 'Content-Type': 'application/json' } : {}) };
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      `${ep.origin}${spec.path}`,
      {
        method: spec.method ?? 'GET',
        headers,
        agent: false,
        ...tlsOptions(ep),
        ...(ep.address ? { lookup: fixedLookup(ep.address) } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (piece: string) => {
          text += piece;
          spec.onData?.(piece, performance.now() - started);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`no complete answer within ${Math.round(spec.timeoutMs / 1000)} s`)),
      spec.timeoutMs,
    );
    req.on('close', () => clearTimeout(timer));
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(body);
  });
}

export interface TlsFacts {
  /** The certificate's subjectAltName, as Node prints it. */
  names: string;
  validTo: string;
  protocol: string;
}

/** A TLS handshake alone (nothing sent): resolves with what the certificate says, rejects with Node's error. */
export function tlsHandshake(ep: Endpoint, timeoutMs: number): Promise<TlsFacts> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: ep.address ?? ep.host, port: ep.port, ...tlsOptions(ep) });
    const timer = setTimeout(
      () => socket.destroy(new Error(`no TLS handshake within ${Math.round(timeoutMs / 1000)} s`)),
      timeoutMs,
    );
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const cert = socket.getPeerCertificate();
      resolve({ names: cert.subjectaltname ?? '', validTo: cert.valid_to, protocol: socket.getProtocol() ?? '' });
      socket.end();
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** The `data:` payloads of complete server-sent events in `buffer`; what is left unterminated is returned too. */
export function sseSplit(buffer: string): { events: string[]; rest: string } {
  const parts = buffer.replace(/\r\n/g, '\n').split('\n\n');
  const rest = parts.pop() ?? '';
  const events = parts
    .map((p) =>
      p
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n'),
    )
    .filter((e) => e.length > 0);
  return { events, rest };
}
