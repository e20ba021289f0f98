// 1. Auth-bypass matrix. nginx and the engine test double run inside a network namespace of our own;
// every try goes from the host to the namespace's veth address (a client on the network), with the
// exact status asserted, and the double's request log (tagged per try) proves which tries reached
// the engine. Then the same matrix against a render with the key check removed must fail.
import { removeTempRoots } from '@slm-copilot/nginx-config/test-support/nginx';
import { MUTATIONS } from '@slm-copilot/nginx-config/test-support/mutate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRIES, TRY_HEADER, type MatrixContext, type Try } from './test-support/auth-matrix.js';
import {
  canCreateNetns,
  createNetns,
  startNsUpstreamDouble,
  type Netns,
  type NsUpstreamDouble,
} from './test-support/netns.js';
import { HOST, MAIN_KEY, startNsGateway, type NsGateway } from './test-support/ns-gateway.js';
import { tcpProbe } from './test-support/raw-https.js';

const ENGINE_PORT = 18080; // inside the namespace, on 127.0.0.1 only (like the appliance's 8080)

interface Outcome {
  id: string;
  status: number | string;
  body: string;
  /** Requests the engine received that carry this try's tag. */
  reached: number;
}

let why: string | null = null;
let ns: Netns | undefined;
let double: NsUpstreamDouble | undefined;
const gateways: NsGateway[] = [];

async function matrixContext(main: NsGateway, metricsOff: NsGateway): Promise<MatrixContext> {
  const target = (g: NsGateway) => ({ address: ns!.nsAddress, port: g.gateway.httpsPort, servername: HOST, ca: g.ca });
  return { main: target(main), metricsOff: target(metricsOff), key: MAIN_KEY, enginePort: ENGINE_PORT };
}

/** Runs every try once, in order; returns the status (or the error) and how often the engine saw it. */
async function runMatrix(ctx: MatrixContext, tries: readonly Try[]): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const t of tries) {
    const before = double!.requests.length;
    let status: number | string;
    let body = '';
    try {
      ({ status, body } = await t.send(ctx));
    } catch (e) {
      status = `error: ${(e as Error).message}`;
    }
    await double!.settle();
    const reached = double!.requests.slice(before).filter((r) => r.headers[TRY_HEADER] === t.id).length;
    out.push({ id: t.id, status, body, reached });
  }
  return out;
}

/** What a try must look like: its exact status, and the engine reached only where allowed. */
function verdict(t: Try, o: Outcome): string | null {
  const wantReached = t.engine === 'proxied' ? 1 : 0;
  if (o.status !== t.expect) return `${t.id}: status ${o.status}, expected ${t.expect} (${t.what})`;
  if (o.reached !== wantReached)
    return `${t.id}: reached the engine ${o.reached}×, expected ${wantReached}× (${t.what})`;
  // Every error nginx makes is an OpenAI-shaped JSON body (HEAD has none).
  if (t.expect >= 400 && !t.id.startsWith('head-')) {
    let shape: unknown;
    try {
      shape = (JSON.parse(o.body) as { error?: { message?: unknown } }).error?.message;
    } catch {
      shape = undefined;
    }
    if (typeof shape !== 'string')
      return `${t.id}: ${o.status} without an OpenAI-shaped JSON error body: ${JSON.stringify(o.body.slice(0, 120))}`;
  }
  return null;
}

beforeAll(async () => {
  why = await canCreateNetns();
  if (why) return;
  ns = await createNetns();
  double = await startNsUpstreamDouble(ns, ENGINE_PORT);
  gateways.push(await startNsGateway(ns, { tag: 'matrix', enginePort: ENGINE_PORT }));
  gateways.push(
    await startNsGateway(ns, { tag: 'metrics-off', enginePort: ENGINE_PORT, env: { ONEAPP_COPILOT_METRICS: 'NO' } }),
  );
}, 120_000);

afterAll(async () => {
  for (const g of gateways) await g.stop();
  await double?.close();
  await ns?.destroy();
  removeTempRoots();
}, 30_000);

describe('auth-bypass matrix (gateway + engine double in a network namespace, client on the host)', () => {
  it('has at least 30 tries, each with one exact expected status', () => {
    expect(TRIES.length).toBeGreaterThanOrEqual(30);
    expect(new Set(TRIES.map((t) => t.id)).size).toBe(TRIES.length);
  });

  it('the gateway answers on the veth address; the engine port there is closed though it listens', async (ctx) => {
    if (why) ctx.skip();
    const main = gateways[0]!.gateway;
    expect(await tcpProbe(ns!.nsAddress, main.httpsPort)).toBe('open');
    expect(await tcpProbe(ns!.nsAddress, ENGINE_PORT)).toBe('ECONNREFUSED');
    // …and it does listen on the namespace's loopback (so the refusal above is the bind address, not a dead
    // engine).
    const { $ } = await import('zx');
    const probe =
      `require('net').connect(${ENGINE_PORT},'127.0.0.1')` +
      ".on('connect',()=>{console.log('open');process.exit(0)})" +
      ".on('error',e=>{console.log(e.code);process.exit(1)})";
    const inside = await $({
      nothrow: true,
      quiet: true,
    })`${ns!.exec} ${process.execPath} -e ${probe}`;
    expect(inside.stdout.trim()).toBe('open');
    // The host's own loopback is another machine's: nothing there either.
    expect(await tcpProbe('127.0.0.1', ENGINE_PORT)).not.toBe('open');
  });

  it('every try gets its exact status and only the allowed ones reach the engine', async (ctx) => {
    if (why) ctx.skip();
    const outcomes = await runMatrix(await matrixContext(gateways[0]!, gateways[1]!), TRIES);
    const failures = TRIES.map((t, i) => verdict(t, outcomes[i]!)).filter((f): f is string => f !== null);
    const passes = TRIES.length - failures.length;
    console.log(
      `auth matrix: ${TRIES.length} tries, ${passes} passed\n` +
        outcomes.map((o) => `  ${o.id.padEnd(28)} ${String(o.status).padEnd(4)} engine×${o.reached}`).join('\n'),
    );
    expect(failures).toEqual([]);
    // Across the whole run the engine saw: the allowed tries (tagged, without the client's credentials)
    // and nginx's own readiness probes (/health, no client header at all) — nothing else.
    const allowed = new Set(TRIES.filter((t) => t.engine === 'proxied').map((t) => t.id));
    for (const r of double!.requests) {
      const tag = r.headers[TRY_HEADER];
      if (tag === undefined) {
        expect(r.url).toBe('/health');
        expect(r.headers.authorization ?? '').toBe('');
        continue;
      }
      expect(allowed.has(String(tag)), `try ${String(tag)} reached the engine`).toBe(true);
      expect(r.headers.authorization ?? '', 'credentials are stripped').toBe('');
      expect(r.headers['x-api-key'] ?? '', 'credentials are stripped').toBe('');
    }
    expect(double!.requests.filter((r) => r.url === '/health').length).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it('mutation: the same matrix against a render WITHOUT the key check fails (tries change outcome)', async (ctx) => {
    if (why) ctx.skip();
    const port = ENGINE_PORT;
    // Each one is registered for afterAll as soon as it runs: a failure starting the second must not orphan the first.
    const mutantMain = await startNsGateway(ns!, { tag: 'mutant', enginePort: port, mutate: MUTATIONS.authRemoved });
    gateways.push(mutantMain);
    const mutantOff = await startNsGateway(ns!, {
      tag: 'mutant-off',
      enginePort: port,
      env: { ONEAPP_COPILOT_METRICS: 'NO' },
      mutate: MUTATIONS.authRemoved,
    });
    gateways.push(mutantOff);
    const outcomes = await runMatrix(await matrixContext(mutantMain, mutantOff), TRIES);
    const changed = TRIES.map((t, i) => ({ t, o: outcomes[i]!, v: verdict(t, outcomes[i]!) })).filter(
      (x) => x.v !== null,
    );
    console.log(
      `mutation (auth removed): ${changed.length} of ${TRIES.length} tries change outcome\n` +
        changed.map((c) => `  ${c.v}`).join('\n'),
    );
    expect(changed.length).toBeGreaterThan(0);
    // The plain "no key" try is among them, and it reached the engine.
    expect(changed.find((c) => c.t.id === 'no-key')?.o).toMatchObject({ status: 200, reached: 1 });
  }, 180_000);
});
