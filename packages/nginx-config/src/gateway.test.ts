// The rendered gateway on the REAL nginx (Debian's), on loopback high ports, in front of a test
// double of the engine that records every request. Each property is also run against a
// deliberately broken render (test-support/mutate.ts) and must fail there.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { httpsGet, sseTiming, sseTimingH2, type HttpResult } from '../test-support/client.js';
import { MUTATIONS } from '../test-support/mutate.js';
import { startGateway, type Gateway, type StartGatewayOptions, removeTempRoots } from '../test-support/nginx.js';
import { waitFor } from '../test-support/poll.js';
import { startUpstreamDouble, type UpstreamDouble } from '../test-support/upstream-double.js';
import { CORS_ALLOWED_HEADERS, renderUnconfigured } from './render.js';

const MAIN = 'sk-test-main-key-0123456789abcdef';
const EXTRA1 = 'sk-extra-one-0123456789abcd';
const EXTRA2 = 'sk.extra+two/x=y~z-0123';
const ORIGIN = 'https://ide.example.com';
/** The exact body of an OpenAI-shaped error (key order as the gateway writes it). */
const errorBody = (message: string, type: string, code: string | null) =>
  JSON.stringify({ error: { message, type, param: null, code } });
const MISSING_BODY = errorBody(
  'Missing API key: send the header Authorization: Bearer YOUR_KEY (or x-api-key: YOUR_KEY).',
  'invalid_request_error',
  'invalid_api_key',
);
const INVALID_BODY =
  '{"error":{"message":"Invalid API key.","type":"authentication_error","param":null,"code":"invalid_api_key"}}';
const WWW_AUTH = 'Bearer realm="slm-copilot"';
const HOOK = 60_000;

/** A gateway plus its own engine double; everything stopped in afterAll. */
interface Rig {
  gw: Gateway;
  up: UpstreamDouble;
  ca: string;
  get(
    path: string,
    opts?: { method?: string; headers?: Record<string, string | number>; body?: string | Buffer },
  ): Promise<HttpResult>;
}
const rigs: Rig[] = [];

async function rig(opts: StartGatewayOptions = {}): Promise<Rig> {
  const up = await startUpstreamDouble();
  const gw = await startGateway({ tag: 'gw', ...opts, enginePort: up.port });
  const ca = gw.trustPem;
  const r: Rig = {
    gw,
    up,
    ca,
    get: (path, o = {}) => httpsGet(`${gw.baseUrl}${path}`, { ca, ...o }),
  };
  rigs.push(r);
  return r;
}

afterAll(async () => {
  for (const r of rigs) {
    await r.gw.stop();
    await r.up.close();
  }
  removeTempRoots();
}, HOOK);

const MAIN_ENV = {
  ONEAPP_COPILOT_EXTRA_API_KEYS: `${EXTRA1},${EXTRA2}`,
  ONEAPP_COPILOT_BASIC_AUTH: 'YES',
  ONEAPP_COPILOT_CORS_ORIGINS: ORIGIN,
  ONEAPP_COPILOT_RATE_LIMIT: '100000',
  ONEAPP_COPILOT_MAX_BODY_SIZE: '1',
};

// ------------------------------------------------------------------------------------------------
// Properties: each returns the list of violations (empty = holds).

async function authProperty(r: Rig): Promise<string[]> {
  const bad: string[] = [];
  const before = r.up.requests.length;
  const check = async (what: string, headers: Record<string, string>, status: number, body?: string) => {
    const res = await r.get('/v1/models', { headers });
    if (res.status !== status) bad.push(`${what}: status ${res.status}, expected ${status}`);
    if (body !== undefined && res.body !== body) bad.push(`${what}: body ${res.body}`);
    if (status === 401 && res.headers['www-authenticate'] !== WWW_AUTH)
      bad.push(`${what}: WWW-Authenticate ${String(res.headers['www-authenticate'])}`);
    if (status === 401 && res.headers['content-type'] !== 'application/json')
      bad.push(`${what}: content-type ${String(res.headers['content-type'])}`);
  };
  await check('no key', {}, 401, MISSING_BODY);
  await check('wrong key', { Authorization: 'Bearer sk-wrong-key-0123456789abcdef' }, 401, INVALID_BODY);
  await check(
    'wrong key, lower-case bearer',
    { Authorization: 'bearer sk-wrong-key-0123456789abcdef' },
    401,
    INVALID_BODY,
  );
  await check('main key in another case', { Authorization: `Bearer ${MAIN.toUpperCase()}` }, 401, INVALID_BODY);
  await check('prefix of the main key', { Authorization: `Bearer ${MAIN.slice(0, -1)}` }, 401, INVALID_BODY);
  await check('main key plus a character', { Authorization: `Bearer ${MAIN}x` }, 401, INVALID_BODY);
  await check('wrong x-api-key', { 'x-api-key': `${EXTRA1}0` }, 401, INVALID_BODY);
  await check('key without scheme', { Authorization: MAIN }, 401, INVALID_BODY);
  await check(
    'wrong basic password',
    { Authorization: `Basic ${Buffer.from(`user:${MAIN}0`).toString('base64')}` },
    401,
    INVALID_BODY,
  );
  if (r.up.requests.length !== before)
    bad.push(`${r.up.requests.length - before} unauthenticated request(s) reached the engine`);
  for (const [what, headers] of [
    ['main key', { Authorization: `Bearer ${MAIN}` }],
    ['extra key 1', { Authorization: `Bearer ${EXTRA1}` }],
    ['extra key 2 (+/=~.)', { Authorization: `Bearer ${EXTRA2}` }],
    ['lower-case bearer', { Authorization: `bearer ${MAIN}` }],
    ['upper-case BEARER', { Authorization: `BEARER ${EXTRA1}` }],
    ['x-api-key', { 'x-api-key': MAIN }],
    ['x-api-key extra', { 'x-api-key': EXTRA2 }],
  ] as Array<[string, Record<string, string>]>) {
    await check(what, headers, 200);
  }
  return bad;
}

async function preflightProperty(r: Rig): Promise<string[]> {
  const bad: string[] = [];
  const before = r.up.requests.length;
  const res = await r.get('/v1/chat/completions', {
    method: 'OPTIONS',
    headers: {
      Origin: ORIGIN,
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'authorization,content-type,x-stainless-os',
    },
  });
  if (res.status !== 204) bad.push(`preflight status ${res.status}`);
  if (res.headers['access-control-allow-origin'] !== ORIGIN)
    bad.push(`allow-origin ${String(res.headers['access-control-allow-origin'])}`);
  if (!/Authorization/.test(String(res.headers['access-control-allow-headers']))) bad.push('Authorization not allowed');
  if (res.headers['access-control-max-age'] !== '7200')
    bad.push(`max-age ${String(res.headers['access-control-max-age'])}`);
  const other = await r.get('/v1/chat/completions', {
    method: 'OPTIONS',
    headers: { Origin: 'https://evil.example.com', 'Access-Control-Request-Method': 'POST' },
  });
  if (other.status !== 204) bad.push(`preflight from another origin: status ${other.status}`);
  if (other.headers['access-control-allow-origin'] !== undefined)
    bad.push(`another origin allowed: ${String(other.headers['access-control-allow-origin'])}`);
  if (r.up.requests.length !== before) bad.push(`${r.up.requests.length - before} preflight(s) reached the engine`);
  return bad;
}

async function readyzProperty(r: Rig): Promise<string[]> {
  const bad: string[] = [];
  r.up.setReady(false);
  const down = await r.get('/readyz');
  if (down.status !== 503) bad.push(`not ready: status ${down.status}`);
  if (!down.body.includes('"code":"model_not_ready"')) bad.push(`not ready: body ${down.body}`);
  r.up.setReady(true);
  const up = await r.get('/readyz');
  if (up.status !== 200) bad.push(`ready: status ${up.status}`);
  if (up.body !== '{"status":"ready","model":"devstral-small-2"}\n') bad.push(`ready: body ${up.body}`);
  return bad;
}

async function bodyLimitProperty(r: Rig): Promise<string[]> {
  const body = Buffer.alloc(2 * 1024 * 1024 + 1, 'a');
  const res = await r.get('/v1/chat/completions', {
    method: 'POST',
    headers: { Authorization: `Bearer ${MAIN}`, 'Content-Type': 'application/json', 'Content-Length': body.length },
    body,
  });
  const want = errorBody(
    'Request body too large: the limit is 1 MiB (ONEAPP_COPILOT_MAX_BODY_SIZE).',
    'invalid_request_error',
    'request_too_large',
  );
  const bad: string[] = [];
  if (res.status !== 413) bad.push(`status ${res.status}`);
  if (res.body !== want) bad.push(`body ${res.body}`);
  return bad;
}

const logLines = async (r: Rig) => (await r.gw.accessLog()).split('\n').filter(Boolean).length;

async function keysNotLoggedProperty(r: Rig): Promise<string[]> {
  const before = await logLines(r);
  await r.get('/v1/models', { headers: { Authorization: `Bearer ${MAIN}` } });
  await r.get('/v1/models', { headers: { 'x-api-key': EXTRA1 } });
  await r.get('/v1/models', { headers: { Authorization: `Basic ${Buffer.from(`me:${EXTRA2}`).toString('base64')}` } });
  await r.get(`/v1/models?api_key=${encodeURIComponent(MAIN)}`);
  await r.get('/v1/models', { headers: { Authorization: 'Bearer sk-not-a-valid-key-but-secret-0000' } });
  // nginx writes a request's log line once it has finished it: wait for all five, however long that takes
  await waitFor('five access log lines', async () => (await logLines(r)) >= before + 5);
  const logs = (await r.gw.accessLog()) + (await r.gw.errorLog());
  const bad: string[] = [];
  for (const k of [
    MAIN,
    EXTRA1,
    EXTRA2,
    encodeURIComponent(MAIN),
    Buffer.from(`me:${EXTRA2}`).toString('base64'),
    'sk-not-a-valid-key-but-secret-0000',
  ]) {
    if (logs.includes(k)) bad.push(`a key is in the logs: ${k.slice(0, 6)}…`);
  }
  if (!logs.includes('"key":"main"') || !logs.includes('"key":"extra-1"')) bad.push('key names are not logged');
  return bad;
}

async function queryKeyProperty(r: Rig): Promise<string[]> {
  const before = r.up.requests.length;
  const res = await r.get(`/v1/models?api_key=${MAIN}`, { headers: { Authorization: `Bearer ${MAIN}` } });
  const bad: string[] = [];
  if (res.status !== 400) bad.push(`status ${res.status}`);
  if (!res.body.includes('"code":"api_key_in_url"')) bad.push(`body ${res.body}`);
  if (r.up.requests.length !== before) bad.push('the request reached the engine');
  return bad;
}

// ------------------------------------------------------------------------------------------------

describe('gateway on the real nginx', () => {
  let main: Rig;
  beforeAll(async () => {
    main = await rig({ env: MAIN_ENV });
  }, HOOK);

  it('passes nginx -t', async () => {
    const [bin, ...args] = main.gw.testCommand;
    const r = await $({ nothrow: true, quiet: true })`${bin!} ${args}`;
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });

  it('401 with the exact OpenAI body and WWW-Authenticate without/with a wrong key; 200 with each key', async () => {
    expect(await authProperty(main)).toEqual([]);
    const r = await main.get('/v1/models');
    expect(r.status).toBe(401);
    expect(r.body).toBe(MISSING_BODY);
    expect(r.headers['www-authenticate']).toBe(WWW_AUTH);
    const wrong = await main.get('/v1/models', { headers: { Authorization: 'bearer sk-wrong-key-0123456789abcdef' } });
    expect([wrong.status, wrong.body, wrong.headers['www-authenticate']]).toEqual([401, INVALID_BODY, WWW_AUTH]);
    const ok = await main.get('/v1/models', { headers: { Authorization: `bearer ${MAIN}` } });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ object: 'double', method: 'GET', url: '/v1/models' });
  });

  it('accepts HTTP Basic with any user name (every base64 alignment) when the password is a key', async () => {
    for (const user of ['', 'a', 'ab', 'abc', 'cline', 'some.user@example.com', 'x:y']) {
      for (const key of [MAIN, EXTRA1, EXTRA2]) {
        const res = await main.get('/v1/models', {
          headers: { Authorization: `Basic ${Buffer.from(`${user}:${key}`).toString('base64')}` },
        });
        expect(res.status, `user ${JSON.stringify(user)}`).toBe(200);
      }
      const wrong = await main.get('/v1/models', {
        headers: { Authorization: `Basic ${Buffer.from(`${user}:${MAIN.slice(1)}`).toString('base64')}` },
      });
      expect(wrong.status).toBe(401);
    }
    // no colon at all: "userKEY" is not "user:KEY"
    for (const pre of ['ab', 'abc', 'abcd']) {
      const res = await main.get('/v1/models', {
        headers: { Authorization: `Basic ${Buffer.from(`${pre}${MAIN}`).toString('base64')}` },
      });
      expect(res.status).toBe(401);
    }
  });

  it('fails the auth property when the key check is removed (mutation)', async () => {
    const broken = await rig({ env: MAIN_ENV, mutate: MUTATIONS.authRemoved });
    const violations = await authProperty(broken);
    expect(violations.length).toBeGreaterThan(0);
    expect(violations.join('\n')).toMatch(/reached the engine/);
  });

  it('never passes the client credentials to the engine', async () => {
    const n = main.up.requests.length;
    await main.get('/v1/models', { headers: { Authorization: `Bearer ${MAIN}`, 'x-api-key': EXTRA1 } });
    const seen = main.up.requests.slice(n);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers.authorization).toBeUndefined();
    expect(seen[0]!.headers['x-api-key']).toBeUndefined();
    expect(seen[0]!.headers['x-forwarded-proto']).toBe('https');
  });

  it('answers CORS preflights itself (204, no key, never proxied; only configured origins)', async () => {
    expect(await preflightProperty(main)).toEqual([]);
  });

  it('fails the preflight property when nginx stops answering preflights (mutation)', async () => {
    const broken = await rig({ env: MAIN_ENV, mutate: MUTATIONS.preflightRemoved });
    expect((await preflightProperty(broken)).length).toBeGreaterThan(0);
  });

  it("puts CORS headers on normal responses and on 401, replacing the engine's own", async () => {
    const ok = await main.get('/v1/models', { headers: { Authorization: `Bearer ${MAIN}`, Origin: ORIGIN } });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe(ORIGIN); // the double sends '*': replaced
    expect(ok.headers.vary).toMatch(/Origin/);
    const denied = await main.get('/v1/models', { headers: { Origin: ORIGIN } });
    expect(denied.status).toBe(401);
    expect(denied.headers['access-control-allow-origin']).toBe(ORIGIN);
    const foreign = await main.get('/v1/models', {
      headers: { Authorization: `Bearer ${MAIN}`, Origin: 'https://evil.example.com' },
    });
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('/readyz: 503 JSON while the engine is not ready, 200 once it is; no key needed', async () => {
    expect(await readyzProperty(main)).toEqual([]);
  });

  it('fails the readyz property when readiness does not probe the engine (mutation)', async () => {
    const broken = await rig({ env: MAIN_ENV, mutate: MUTATIONS.readyzWithoutProbe });
    expect((await readyzProperty(broken)).length).toBeGreaterThan(0);
  });

  it('413 JSON for a body over the limit', async () => {
    expect(await bodyLimitProperty(main)).toEqual([]);
  });

  it('fails the body-limit property without the limit (mutation)', async () => {
    const broken = await rig({ env: MAIN_ENV, mutate: MUTATIONS.bodyLimitRaised });
    expect((await bodyLimitProperty(broken)).length).toBeGreaterThan(0);
  });

  it('refuses keys in the query string (400 JSON, not proxied)', async () => {
    expect(await queryKeyProperty(main)).toEqual([]);
    const broken = await rig({ env: MAIN_ENV, mutate: MUTATIONS.queryKeysAccepted });
    expect((await queryKeyProperty(broken)).length).toBeGreaterThan(0);
  });

  it('keeps keys out of the access and error logs (names only)', async () => {
    expect(await keysNotLoggedProperty(main)).toEqual([]);
    const broken = await rig({ env: MAIN_ENV, mutate: MUTATIONS.keysLogged });
    expect((await keysNotLoggedProperty(broken)).length).toBeGreaterThan(0);
  });

  it('proxies /metrics with a key only', async () => {
    expect((await main.get('/metrics')).status).toBe(401);
    const m = await main.get('/metrics', { headers: { Authorization: `Bearer ${MAIN}` } });
    expect(m.status).toBe(200);
    expect(m.body).toBe('double_requests_total 1\n');
  });

  it('unknown paths need a key too; internal locations are not reachable', async () => {
    expect((await main.get('/anything')).status).toBe(401);
    const internal = await main.get('/_slm_copilot_auth', { headers: { Authorization: `Bearer ${MAIN}` } });
    expect(internal.status).toBe(404);
    expect(internal.body).toContain('"code":"not_found"');
  });

  it('port 80 (here a free port) redirects to HTTPS and serves the ACME webroot', async () => {
    const dir = `${main.gw.paths.nginx.acmeWebroot}/.well-known/acme-challenge`;
    await mkdir(dir, { recursive: true });
    await writeFile(`${dir}/token123`, 'token123.thumbprint');
    const get = (p: string) => fetch(`http://127.0.0.1:${main.gw.httpPort}${p}`, { redirect: 'manual' });
    const challenge = await get('/.well-known/acme-challenge/token123');
    expect(challenge.status).toBe(200);
    expect(await challenge.text()).toBe('token123.thumbprint');
    const redirect = await get('/v1/models?x=1');
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe(`https://127.0.0.1:${main.gw.httpsPort}/v1/models?x=1`);
  });

  it("JSON 502 when the engine is down, never nginx's HTML", async () => {
    const dead = await rig({ env: MAIN_ENV });
    await dead.up.close();
    const r = await dead.get('/v1/chat/completions', {
      method: 'POST',
      headers: { Authorization: `Bearer ${MAIN}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(r.status).toBe(502);
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body)).toEqual({
      error: {
        message: 'The inference engine is not reachable (starting, restarting or stopped); retry in a moment.',
        type: 'server_error',
        param: null,
        code: 'engine_unavailable',
      },
    });
    const ready = await dead.get('/readyz');
    expect(ready.status).toBe(503);
  });
});

describe('limits', () => {
  let limited: Rig;
  beforeAll(async () => {
    limited = await rig({
      env: {
        ONEAPP_COPILOT_RATE_LIMIT: '1',
        ONEAPP_COPILOT_CONNECTION_LIMIT: '1',
        ONEAPP_COPILOT_CORS_ORIGINS: ORIGIN,
      },
    });
  }, HOOK);

  const RATE_BODY = errorBody(
    'Rate limit reached for this API key: 1 requests per minute.',
    'rate_limit_error',
    'rate_limit_exceeded',
  );

  async function rateProperty(r: Rig, key: string): Promise<string[]> {
    const bad: string[] = [];
    const first = await r.get('/v1/models', { headers: { Authorization: `Bearer ${key}` } });
    if (first.status !== 200) bad.push(`first request: ${first.status}`);
    const second = await r.get('/v1/models', { headers: { Authorization: `Bearer ${key}`, Origin: ORIGIN } });
    if (second.status !== 429) bad.push(`second request within the minute: ${second.status}`);
    else {
      if (second.body !== RATE_BODY) bad.push(`429 body ${second.body}`);
      if (second.headers['access-control-allow-origin'] !== ORIGIN) bad.push('429 without CORS headers');
      if (second.headers['retry-after'] !== '60') bad.push(`Retry-After ${String(second.headers['retry-after'])}`);
    }
    return bad;
  }

  it('429 (OpenAI shape, CORS, Retry-After) past 1 request per minute per key', async () => {
    expect(await rateProperty(limited, MAIN)).toEqual([]);
  });

  it('counts unauthenticated requests per client address (brute force is limited too)', async () => {
    const a = await limited.get('/v1/models', { headers: { Authorization: 'Bearer sk-guess-0000000000000001' } });
    const b = await limited.get('/v1/models', { headers: { Authorization: 'Bearer sk-guess-0000000000000002' } });
    expect([a.status, b.status]).toEqual([401, 429]);
  });

  it('fails the rate property without limit_req (mutation)', async () => {
    const broken = await rig({
      env: { ONEAPP_COPILOT_RATE_LIMIT: '1', ONEAPP_COPILOT_CORS_ORIGINS: ORIGIN },
      mutate: MUTATIONS.rateLimitRemoved,
    });
    expect((await rateProperty(broken, MAIN)).length).toBeGreaterThan(0);
  });

  it('429 for a second concurrent request of the same key (connection limit 1)', async () => {
    const r = await rig({ env: { ONEAPP_COPILOT_RATE_LIMIT: '0', ONEAPP_COPILOT_CONNECTION_LIMIT: '1' } });
    const headers = { Authorization: `Bearer ${MAIN}` };
    const stream = sseTiming(`${r.gw.baseUrl}/slow-sse`, { ca: r.ca, headers });
    // the stream holds its connection slot from the moment nginx proxies it (the double sees it)
    await waitFor('the stream to reach the engine', () => r.up.requests.some((q) => q.url === '/slow-sse'));
    const second = await r.get('/v1/models', { headers });
    expect(second.status).toBe(429);
    expect(JSON.parse(second.body).error).toEqual({
      message: 'Too many concurrent requests for this API key (limit: 1).',
      type: 'rate_limit_error',
      param: null,
      code: 'rate_limit_exceeded',
    });
    const other = await r.get('/v1/models', { headers: { Authorization: 'Bearer sk-test-main-key-0123456789abcdeX' } });
    expect(other.status).toBe(401); // a different client identity is not blocked by that key's stream
    expect((await stream).status).toBe(200);
    expect((await r.get('/v1/models', { headers })).status).toBe(200);
  });
});

describe('streaming (server-sent events)', () => {
  // The upstream double sends one event every 300 ms for 3 s. Unbuffered, the first event arrives
  // long before the end; buffered (mutation), only at the end. Wide margins: 1.5 s either way.
  async function streamingProperty(r: Rig): Promise<string[]> {
    const bad: string[] = [];
    // HTTP/1.1 and HTTP/2 (what browsers and curl negotiate), one after the other
    for (const [proto, measure] of [
      ['HTTP/1.1', sseTiming],
      ['HTTP/2', sseTimingH2],
    ] as const) {
      const t = await measure(`${r.gw.baseUrl}/slow-sse`, { ca: r.ca, headers: { Authorization: `Bearer ${MAIN}` } });
      if (t.status !== 200) bad.push(`${proto}: status ${t.status}`);
      if (t.arrivals.length !== 11) bad.push(`${proto}: ${t.arrivals.length} events`);
      const first = t.arrivals[0] ?? Infinity;
      if (!(first < t.endMs - 1500))
        bad.push(`${proto}: first event at ${Math.round(first)} ms, stream ended at ${Math.round(t.endMs)} ms`);
    }
    return bad;
  }

  it('delivers the first event long before the stream ends; X-Accel-Buffering: no', async () => {
    const r = await rig({ env: {} });
    expect(await streamingProperty(r)).toEqual([]);
    const h = await r.get('/v1/models', { headers: { Authorization: `Bearer ${MAIN}` } });
    expect(h.headers['x-accel-buffering']).toBe('no');
  });

  it('fails with proxy_buffering on (mutation): the first event arrives only at the end', async () => {
    const r = await rig({ env: {}, mutate: MUTATIONS.bufferingOn });
    const t = await sseTiming(`${r.gw.baseUrl}/slow-sse`, { ca: r.ca, headers: { Authorization: `Bearer ${MAIN}` } });
    expect(t.arrivals.length).toBe(11);
    expect(t.arrivals[0]!).toBeGreaterThan(t.endMs - 1500);
    // The property fails through HTTP/1.1. (Measured here: nginx 1.22 still streamed promptly over
    // HTTP/2 with buffering on, so HTTP/2 alone would not catch this mutation.)
    const violations = await streamingProperty(r);
    expect(violations.filter((v) => v.startsWith('HTTP/1.1: first event'))).toHaveLength(1);
  });
});

/**
 * Engine double (named as such) for the keep-alive race: it answers the first request on a
 * connection with keep-alive, then closes that connection as the next request arrives, before any
 * response byte (what llama-server does when its 5 s idle timer fires as nginx reuses the
 * connection). Other connections are answered normally.
 */
async function startClosingDouble(): Promise<{
  port: number;
  requests: () => number;
  closedEarly: () => number;
  close: () => Promise<void>;
}> {
  let requests = 0;
  let closedEarly = 0;
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    let served = 0;
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        buf = buf.slice(end + 4 + length);
        requests++;
        served++;
        if (served === 2) {
          closedEarly++;
          sock.destroy();
          return;
        }
        const body = '{"ok":true}';
        const lines = ['HTTP/1.1 200 OK', 'Content-Type: application/json', `Content-Length: ${body.length}`];
        sock.write(`${[...lines, 'Connection: keep-alive'].join('\r\n')}\r\n\r\n${body}`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    requests: () => requests,
    closedEarly: () => closedEarly,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('engine closes a kept-alive connection as nginx reuses it', () => {
  const post = (gw: Gateway, ca: string) =>
    httpsGet(`${gw.baseUrl}/v1/chat/completions`, {
      ca,
      method: 'POST',
      headers: { authorization: `Bearer ${MAIN}`, 'content-type': 'application/json' },
      body: '{"model":"m","messages":[]}',
    });

  it('the POST is retried once on a fresh connection: the client gets the answer, not a 502', async () => {
    const up = await startClosingDouble();
    const gw = await startGateway({ tag: 'retry', enginePort: up.port, env: { ONEAPP_COPILOT_RATE_LIMIT: '100000' } });
    try {
      const first = await post(gw, gw.trustPem);
      const second = await post(gw, gw.trustPem);
      expect([first.status, second.status]).toEqual([200, 200]);
      expect(second.body).toBe('{"ok":true}');
      expect(up.closedEarly()).toBe(1); // the race happened
      expect(up.requests()).toBe(3); // … and nginx sent the second request again
    } finally {
      await gw.stop();
      await up.close();
    }
  });

  it('fails without the retry (mutation): the second POST is a 502', async () => {
    const up = await startClosingDouble();
    const gw = await startGateway({
      tag: 'retry-mut',
      enginePort: up.port,
      env: { ONEAPP_COPILOT_RATE_LIMIT: '100000' },
      mutate: MUTATIONS.noUpstreamRetry,
    });
    try {
      expect((await post(gw, gw.trustPem)).status).toBe(200);
      expect((await post(gw, gw.trustPem)).status).toBe(502);
      expect(up.requests()).toBe(2);
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});

describe('other configurations', () => {
  it('metrics off: /metrics is 404 JSON with a key and 401 without; CORS * answers every origin', async () => {
    const r = await rig({ env: { ONEAPP_COPILOT_METRICS: 'NO', ONEAPP_COPILOT_CORS_ORIGINS: '*' } });
    expect((await r.get('/metrics')).status).toBe(401);
    const m = await r.get('/metrics', { headers: { Authorization: `Bearer ${MAIN}` } });
    expect(m.status).toBe(404);
    expect(JSON.parse(m.body).error.message).toBe(
      'Metrics are disabled on this appliance (ONEAPP_COPILOT_METRICS=NO).',
    );
    expect(r.up.requests.filter((q) => q.url.startsWith('/metrics'))).toHaveLength(0);
    const pre = await r.get('/v1/models', {
      method: 'OPTIONS',
      headers: { Origin: 'https://anything.example', 'Access-Control-Request-Method': 'GET' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('*');
    expect(pre.headers['access-control-allow-headers']).toBe(CORS_ALLOWED_HEADERS.join(', '));
    expect(r.up.requests).toHaveLength(0);
  });

  it('Basic auth off: Basic credentials are refused', async () => {
    const r = await rig({ env: {} });
    const res = await r.get('/v1/models', {
      headers: { Authorization: `Basic ${Buffer.from(`u:${MAIN}`).toString('base64')}` },
    });
    expect(res.status).toBe(401);
  });
});

describe('first boot without a good configuration', () => {
  it('answers every path on both ports with 503 JSON naming the problem, and never proxies', async () => {
    const refusal = 'expected a port from 1 to 65535 other than 80, 8080 and 8081';
    const problem = `invalid context: 1 variable refused\n  ONEAPP_COPILOT_HTTPS_PORT = "80": ${refusal}`;
    const r = await rig({
      mutate: (_files, c) =>
        renderUnconfigured(problem, {
          paths: c.paths,
          tls: c.tls,
          httpsPort: c.httpsPort,
          httpPort: c.httpPort,
          listenAddresses: ['127.0.0.1'],
        }),
    });
    const want = {
      error: {
        message:
          'SLM-Copilot is not configured: invalid context: 1 variable refused ONEAPP_COPILOT_HTTPS_PORT = ?80?: ' +
          `${refusal}. Fix the VM context and reboot (or run configure again).`,
        type: 'server_error',
        param: null,
        code: 'appliance_not_configured',
      },
    };
    for (const p of ['/v1/models', '/readyz', '/', '/metrics']) {
      const res = await r.get(p, { headers: { Authorization: `Bearer ${MAIN}` } });
      expect(res.status, p).toBe(503);
      expect(JSON.parse(res.body)).toEqual(want);
    }
    const plain = await fetch(`http://127.0.0.1:${r.gw.httpPort}/v1/models`);
    expect(plain.status).toBe(503);
    expect(await plain.json()).toEqual(want);
    expect(r.up.requests).toHaveLength(0);
  });
});
