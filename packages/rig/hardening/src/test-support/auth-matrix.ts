// The auth-bypass matrix: every way we could think of to reach the engine without a valid key,
// each with the EXACT status the gateway must answer and whether the request may reach the engine.
// Every request carries `X-Hardening-Try: <id>` so the engine double's log says which try got through.
import { connect as http2Connect } from 'node:http2';
import { lookupTo } from '@slm-copilot/nginx-config/test-support/client';
import { rawHttp, rawHttps, type RawResponse, type RawTarget } from './raw-https.js';

export interface MatrixContext {
  /** The gateway with ONEAPP_COPILOT_METRICS=YES (the default). */
  main: RawTarget;
  /** The same render with ONEAPP_COPILOT_METRICS=NO. */
  metricsOff: RawTarget;
  /** The API key (main). */
  key: string;
  /** The engine's port (inside the namespace), for Host-header games. */
  enginePort: number;
}

/**
 * - `none`: the engine must not see the request at all;
 * - `proxied`: allowed — a valid key (the engine sees it, without the credentials);
 * - `probe`: allowed — `/readyz` makes nginx send its own `GET /health` (no client header).
 */
export type EngineReach = 'none' | 'proxied' | 'probe';

export interface Try {
  id: string;
  what: string;
  expect: number;
  engine: EngineReach;
  send(ctx: MatrixContext): Promise<{ status: number; body: string }>;
}

export const TRY_HEADER = 'x-hardening-try';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** `METHOD path HTTP/1.1` with Host, the try's tag, the given header lines (verbatim) and Connection: close. */
function req(
  id: string,
  method: string,
  target: string,
  headerLines: string[] = [],
  opts: { gw?: 'main' | 'metricsOff'; body?: string; host?: string; version?: string } = {},
) {
  return async (ctx: MatrixContext): Promise<RawResponse> => {
    const t = ctx[opts.gw ?? 'main'];
    const host = opts.host ?? `${t.servername}:${t.port}`;
    const body = opts.body ?? '';
    const lines = [
      `${method} ${target} ${opts.version ?? 'HTTP/1.1'}`,
      `Host: ${host}`,
      `X-Hardening-Try: ${id}`,
      ...headerLines,
    ];
    if (body) lines.push(`Content-Length: ${Buffer.byteLength(body)}`, 'Content-Type: application/json');
    lines.push('Connection: close');
    return rawHttps(t, `${lines.join('\r\n')}\r\n\r\n${body}`);
  };
}

/** A request whose header block is given whole (for CR/LF/NUL games); the tag comes first. */
function rawReq(id: string, head: (ctx: MatrixContext) => string) {
  return async (ctx: MatrixContext): Promise<RawResponse> =>
    rawHttps(ctx.main, head(ctx).replace('\r\n', `\r\nX-Hardening-Try: ${id}\r\n`));
}

function h2Get(id: string, path: string, headers: Record<string, string> = {}) {
  return (ctx: MatrixContext) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const t = ctx.main;
      const session = http2Connect(`https://${t.servername}:${t.port}`, {
        ca: t.ca,
        servername: t.servername,
        lookup: lookupTo(t.address),
      });
      session.on('error', reject);
      const r = session.request({ ':method': 'GET', ':path': path, [TRY_HEADER]: id, ...headers });
      let status = 0;
      let body = '';
      r.setEncoding('utf8');
      r.on('response', (h) => (status = Number(h[':status'])));
      r.on('data', (c: string) => (body += c));
      r.on('end', () => {
        session.close();
        resolve({ status, body });
      });
      r.on('error', reject);
      r.end();
    });
}

type Spec = Omit<Try, 'send'> & { send: (id: string) => Try['send'] };
const T = (s: Spec): Try => ({ ...s, send: s.send(s.id) });

const bearer = (k: string) => `Authorization: Bearer ${k}`;

/** The tries. Statuses are nginx 1.22's (Debian 12) on our render; each one is explained. */
export const TRIES: Try[] = [
  // --- the baseline ---------------------------------------------------------------------------
  T({
    id: 'no-key',
    what: 'GET /v1/models without any credentials',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/v1/models'),
  }),
  T({
    id: 'valid-bearer',
    what: 'control: Authorization: Bearer <key>',
    expect: 200,
    engine: 'proxied',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [bearer(c.key)])(c),
  }),
  T({
    id: 'wrong-key',
    what: 'Authorization: Bearer <a wrong key of valid shape>',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/v1/models', [bearer('sk-wrong-key-0123456789abcdef0000')]),
  }),
  T({
    id: 'post-no-key',
    what: 'POST /v1/chat/completions without credentials',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'POST', '/v1/chat/completions', [], { body: '{"model":"x","messages":[]}' }),
  }),
  // --- keys in the URL ------------------------------------------------------------------------
  T({
    id: 'query-api_key',
    what: 'the valid key as ?api_key= (no header)',
    expect: 400,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', `/v1/models?api_key=${c.key}`)(c),
  }),
  T({
    id: 'query-key',
    what: 'the valid key as ?key= (no header)',
    expect: 400,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', `/v1/models?key=${c.key}`)(c),
  }),
  T({
    id: 'query-key-with-header',
    what: '?api_key= AND a valid header: still refused (the URL would be logged)',
    expect: 400,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', `/v1/models?x=1&API_KEY=${c.key}`, [bearer(c.key)])(c),
  }),
  // --- the Authorization header -----------------------------------------------------------------
  T({
    id: 'empty-bearer',
    what: 'Authorization: Bearer (no key)',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/v1/models', ['Authorization: Bearer']),
  }),
  T({
    id: 'bearer-two-spaces-empty',
    what: 'Authorization: "Bearer  " (two spaces, no key)',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/v1/models', ['Authorization: Bearer  ']),
  }),
  T({
    id: 'bearer-two-spaces-valid',
    what: 'Bearer, two spaces, the valid key: accepted (RFC 7235 allows 1*SP)',
    expect: 200,
    engine: 'proxied',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [`Authorization: Bearer  ${c.key}`])(c),
  }),
  T({
    id: 'bearer-no-space',
    what: 'Bearer<key> glued together',
    expect: 401,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [`Authorization: Bearer${c.key}`])(c),
  }),
  T({
    id: 'lowercase-bearer-valid',
    what: 'bearer <key> (scheme is case-insensitive)',
    expect: 200,
    engine: 'proxied',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [`Authorization: bearer ${c.key}`])(c),
  }),
  T({
    id: 'lowercase-bearer-wrong',
    what: 'bearer <wrong key>',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/v1/models', ['Authorization: bearer sk-wrong-key-0123456789abcdef0000']),
  }),
  T({
    id: 'key-plus-x',
    what: 'Bearer <key>x (valid key as a prefix)',
    expect: 401,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [bearer(`${c.key}x`)])(c),
  }),
  T({
    id: 'key-minus-last',
    what: 'Bearer <key without its last character>',
    expect: 401,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [bearer(c.key.slice(0, -1))])(c),
  }),
  T({
    id: 'key-upper-case',
    what: 'Bearer <KEY in upper case> (keys are case-sensitive)',
    expect: 401,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [bearer(c.key.toUpperCase())])(c),
  }),
  T({
    id: 'key-regex-dot',
    what: 'Bearer <key with "-" replaced by "."> (regex metacharacters are escaped)',
    expect: 401,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [bearer(c.key.replace(/-/g, '.'))])(c),
  }),
  T({
    id: 'token-scheme',
    what: 'Authorization: Token <key> (another scheme)',
    expect: 401,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [`Authorization: Token ${c.key}`])(c),
  }),
  T({
    id: 'basic-when-off',
    what: 'Basic base64(user:<key>) while ONEAPP_COPILOT_BASIC_AUTH=NO',
    expect: 401,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [`Authorization: Basic ${b64(`user:${c.key}`)}`])(c),
  }),
  T({
    id: 'basic-empty-user-when-off',
    what: 'Basic base64(:<key>) while basic auth is off',
    expect: 401,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [`Authorization: Basic ${b64(`:${c.key}`)}`])(c),
  }),
  // --- x-api-key ----------------------------------------------------------------------------------
  T({
    id: 'x-api-key-wrong',
    what: 'x-api-key: <wrong key>',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/v1/models', ['x-api-key: sk-wrong-key-0123456789abcdef0000']),
  }),
  T({
    id: 'x-api-key-valid',
    what: 'control: x-api-key: <key>',
    expect: 200,
    engine: 'proxied',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [`x-api-key: ${c.key}`])(c),
  }),
  T({
    id: 'x-api-key-bearer',
    what: 'x-api-key: Bearer <key> (scheme where none belongs)',
    expect: 401,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [`x-api-key: Bearer ${c.key}`])(c),
  }),
  T({
    id: 'cookie-key',
    what: 'the key in a Cookie',
    expect: 401,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [`Cookie: api_key=${c.key}; key=${c.key}`])(c),
  }),
  // --- paths ---------------------------------------------------------------------------------------
  T({
    id: 'double-slash',
    what: '//v1/models',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '//v1/models'),
  }),
  T({
    id: 'encoded-slash',
    what: '/v1%2Fmodels',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/v1%2Fmodels'),
  }),
  T({
    id: 'readyz-dotdot',
    what: '/readyz/../v1/models (through the keyless location)',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/readyz/../v1/models'),
  }),
  T({
    id: 'v1-dotdot',
    what: '/v1/../v1/models',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/v1/../v1/models'),
  }),
  T({
    id: 'encoded-dotdot-root',
    what: '/%2e%2e/v1/models (above the root)',
    expect: 400,
    engine: 'none',
    send: (id) => req(id, 'GET', '/%2e%2e/v1/models'),
  }),
  T({
    id: 'readyz-encoded-dotdot',
    what: '/readyz/%2e%2e/v1/models',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/readyz/%2e%2e/v1/models'),
  }),
  T({
    id: 'readyz-suffix',
    what: '/readyz/x and /readyzx are not /readyz',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/readyzx'),
  }),
  T({
    id: 'internal-error-page',
    what: 'GET /_slm_copilot_error/400 (internal error location) directly',
    expect: 404,
    engine: 'none',
    send: (id) => req(id, 'GET', '/_slm_copilot_error/400'),
  }),
  T({
    id: 'readyz-semicolon',
    what: '/readyz;/v1/models (path parameter trick)',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/readyz;/v1/models'),
  }),
  T({
    id: 'absolute-form',
    what: 'absolute-form target http://127.0.0.1:<engine>/v1/models',
    expect: 401,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', `http://127.0.0.1:${c.enginePort}/v1/models`)(c),
  }),
  T({
    id: 'host-engine',
    what: 'Host: 127.0.0.1:<engine port>',
    expect: 401,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [], { host: `127.0.0.1:${c.enginePort}` })(c),
  }),
  T({
    id: 'internal-auth',
    what: 'GET /_slm_copilot_auth (internal location) with a valid key',
    expect: 404,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/_slm_copilot_auth', [bearer(c.key)])(c),
  }),
  T({
    id: 'internal-probe',
    what: 'GET /_slm_copilot_probe (internal location; its own error_page turns the 404 into 403)',
    expect: 403,
    engine: 'none',
    send: (id) => req(id, 'GET', '/_slm_copilot_probe'),
  }),
  T({
    id: 'readyz',
    what: 'control: /readyz needs no key (nginx probes /health itself)',
    expect: 200,
    engine: 'probe',
    send: (id) => req(id, 'GET', '/readyz'),
  }),
  T({
    id: 'spoofed-forwarding',
    what: 'X-Forwarded-For/X-Real-IP: 127.0.0.1 and X-Original-URI: /readyz',
    expect: 401,
    engine: 'none',
    send: (id) =>
      req(id, 'GET', '/v1/models', ['X-Forwarded-For: 127.0.0.1', 'X-Real-IP: 127.0.0.1', 'X-Original-URI: /readyz']),
  }),
  // --- methods ---------------------------------------------------------------------------------
  T({
    id: 'head-no-key',
    what: 'HEAD /v1/models without a key',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'HEAD', '/v1/models'),
  }),
  T({
    id: 'put-no-key',
    what: 'PUT /v1/models without a key',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'PUT', '/v1/models', [], { body: '{}' }),
  }),
  T({
    id: 'delete-no-key',
    what: 'DELETE /v1/models/x without a key',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'DELETE', '/v1/models/x'),
  }),
  T({
    id: 'patch-no-key',
    what: 'PATCH /v1/models without a key',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'PATCH', '/v1/models', [], { body: '{}' }),
  }),
  T({
    id: 'trace',
    what: 'TRACE /v1/models (nginx refuses TRACE outright)',
    expect: 405,
    engine: 'none',
    send: (id) => req(id, 'TRACE', '/v1/models'),
  }),
  T({
    id: 'options-preflight',
    what: 'OPTIONS preflight: answered by nginx, never proxied',
    expect: 204,
    engine: 'none',
    send: (id) =>
      req(id, 'OPTIONS', '/v1/chat/completions', [
        'Origin: https://evil.example',
        'Access-Control-Request-Method: POST',
      ]),
  }),
  T({
    id: 'http10-no-host',
    what: 'HTTP/1.0 without Host and without a key',
    expect: 401,
    engine: 'none',
    send: (id) => rawReq(id, () => 'GET /v1/models HTTP/1.0\r\n\r\n'),
  }),
  T({
    id: 'h2-no-key',
    what: 'HTTP/2 GET /v1/models without a key',
    expect: 401,
    engine: 'none',
    send: (id) => h2Get(id, '/v1/models'),
  }),
  // --- /metrics ---------------------------------------------------------------------------------
  T({
    id: 'metrics-no-key',
    what: '/metrics without a key (metrics on)',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/metrics'),
  }),
  T({
    id: 'metrics-key',
    what: 'control: /metrics with a key (metrics on)',
    expect: 200,
    engine: 'proxied',
    send: (id) => (c) => req(id, 'GET', '/metrics', [bearer(c.key)])(c),
  }),
  T({
    id: 'metrics-off-no-key',
    what: '/metrics without a key (metrics off)',
    expect: 401,
    engine: 'none',
    send: (id) => req(id, 'GET', '/metrics', [], { gw: 'metricsOff' }),
  }),
  T({
    id: 'metrics-off-key',
    what: '/metrics with a key when metrics are off',
    expect: 404,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/metrics', [bearer(c.key)], { gw: 'metricsOff' })(c),
  }),
  // --- oversize -------------------------------------------------------------------------------
  T({
    id: 'auth-64k',
    what: 'a 64 KiB Authorization header',
    expect: 431,
    engine: 'none',
    send: (id) => req(id, 'GET', '/v1/models', [`Authorization: Bearer ${'A'.repeat(64 * 1024)}`]),
  }),
  T({
    id: 'auth-64k-valid-tail',
    what: '64 KiB of padding with the valid key at the end',
    expect: 431,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [`Authorization: Bearer ${' '.repeat(64 * 1024)}${c.key}`])(c),
  }),
  T({
    id: 'uri-16k',
    what: 'a 16 KiB request URI',
    expect: 414,
    engine: 'none',
    send: (id) => req(id, 'GET', `/v1/models?x=${'a'.repeat(16 * 1024)}`),
  }),
  T({
    id: 'many-headers',
    what: '200 headers of 200 bytes (40 KiB total)',
    expect: 431,
    engine: 'none',
    send: (id) =>
      req(
        id,
        'GET',
        '/v1/models',
        Array.from({ length: 200 }, (_, i) => `X-Pad-${i}: ${'p'.repeat(200)}`),
      ),
  }),
  // --- header injection (raw bytes) -----------------------------------------------------------------
  T({
    id: 'crlf-in-value',
    what: 'x-api-key: <wrong>\\r\\nAuthorization: Bearer <wrong> (CRLF smuggles a second header; both wrong)',
    expect: 401,
    engine: 'none',
    send: (id) =>
      rawReq(
        id,
        (c) =>
          `GET /v1/models HTTP/1.1\r\nHost: ${c.main.servername}\r\n` +
          `x-api-key: sk-wrong-key-0123456789abcdef0000\r\n` +
          `Authorization: Bearer sk-wrong-key-0123456789abcdef1111\r\nConnection: close\r\n\r\n`,
      ),
  }),
  T({
    id: 'bare-cr-in-value',
    what: 'Authorization: Bearer <key>\\rX: y (bare CR inside the value)',
    expect: 400,
    engine: 'none',
    send: (id) =>
      rawReq(
        id,
        (c) =>
          `GET /v1/models HTTP/1.1\r\nHost: ${c.main.servername}\r\nAuthorization: Bearer ${c.key}\rX: y\r\n` +
          `Connection: close\r\n\r\n`,
      ),
  }),
  T({
    id: 'nul-in-value',
    what: 'Authorization: Bearer <key>\\0 (NUL byte)',
    expect: 400,
    engine: 'none',
    send: (id) =>
      rawReq(
        id,
        (c) =>
          `GET /v1/models HTTP/1.1\r\nHost: ${c.main.servername}\r\nAuthorization: Bearer ${c.key}\0\r\n` +
          `Connection: close\r\n\r\n`,
      ),
  }),
  T({
    id: 'obs-fold',
    what: 'Authorization folded onto a continuation line (obs-fold)',
    expect: 400,
    engine: 'none',
    send: (id) =>
      rawReq(
        id,
        (c) =>
          `GET /v1/models HTTP/1.1\r\nHost: ${c.main.servername}\r\nAuthorization: Bearer\r\n ${c.key}\r\n` +
          `Connection: close\r\n\r\n`,
      ),
  }),
  T({
    id: 'space-before-colon',
    what: '"Authorization : Bearer <key>" (space before the colon: refused)',
    expect: 400,
    engine: 'none',
    send: (id) =>
      rawReq(
        id,
        (c) =>
          `GET /v1/models HTTP/1.1\r\nHost: ${c.main.servername}\r\nAuthorization : Bearer ${c.key}\r\n` +
          `Connection: close\r\n\r\n`,
      ),
  }),
  T({
    id: 'underscore-header',
    what: 'x_api_key: <key> (underscores: ignored by nginx)',
    expect: 401,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [`x_api_key: ${c.key}`])(c),
  }),
  T({
    id: 'duplicate-authorization',
    what: 'two Authorization headers, wrong then valid',
    expect: 400,
    engine: 'none',
    send: (id) => (c) => req(id, 'GET', '/v1/models', [bearer('sk-wrong-key-0123456789abcdef0000'), bearer(c.key)])(c),
  }),
  T({
    id: 'smuggling-cl-te',
    what: 'Content-Length and Transfer-Encoding: chunked together (request smuggling)',
    expect: 400,
    engine: 'none',
    send: (id) =>
      rawReq(
        id,
        (c) =>
          `POST /v1/models HTTP/1.1\r\nHost: ${c.main.servername}\r\nContent-Length: 4\r\n` +
          `Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /v1/models HTTP/1.1\r\n` +
          `Host: x\r\n\r\n`,
      ),
  }),
  T({
    id: 'plain-http-on-tls-port',
    what: 'plain HTTP to the HTTPS port',
    expect: 400,
    engine: 'none',
    send: (id) => (c) =>
      rawHttp(
        c.main.address,
        c.main.port,
        `GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Hardening-Try: ${id}\r\nAuthorization: Bearer ${c.key}\r\n` +
          `Connection: close\r\n\r\n`,
      ),
  }),
];
