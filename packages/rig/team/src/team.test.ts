// The service in network namespaces: one lb and three inference nodes (then a fourth), each its own
// namespace with the real nginx on its rendered gateway and, for inference nodes, a real llama-server on
// the tiny model; the OneGate double describes the service; every node's team refresher talks to it.
// Each behaviour is checked, then a mutation that breaks it is shown to fail the same check.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { canCreateNetns } from '@slm-copilot/hardening/test-support/netns';
import { backendsFromService, PUBLISHED, type TeamView } from '@slm-copilot/lifecycle';
import { httpsGet } from '@slm-copilot/nginx-config/test-support/client';
import { removeTempRoots } from '@slm-copilot/nginx-config/test-support/nginx';
import { waitFor } from '@slm-copilot/nginx-config/test-support/poll';
import { OneGateClient } from '@slm-copilot/onegate';
import { startOneGateDouble, type OneGateDouble } from '@slm-copilot/onegate/test-support/onegate-double';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';
import type { FileSet } from '@slm-copilot/task-kit';
import { ensureLlamaBuild, ensureTinyModel, type GgufModel, type LlamaBuild } from '@slm-copilot/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, type ChatResult } from './client.js';
import { lbLog, REFRESH_MS, teamLogs, startInference, startLb, type InferenceNode, type LbNode } from './nodes.js';

const unavailable = await canCreateNetns();
if (unavailable) console.warn(`team test skipped: network namespaces cannot be created here (${unavailable})`);

const KEYS = Array.from({ length: 32 }, (_, i) => `sk-team-user-${String(i + 1).padStart(2, '0')}-0123456789abcdef`);
const name = (i: number) => `extra-${i + 1}`;
const SERVICE_ID = 42;
/** A stream killed mid-way must end well before any timeout would end it (the lb's read timeout is 1800 s). */
const PROMPT_END_BOUND_MS = 15_000;

let double: OneGateDouble;
let lb: LbNode;
let build: LlamaBuild;
let model: GgufModel;
const nodes: InferenceNode[] = [];
const figures: string[] = [];

const roles = () => [
  { name: 'lb', vms: [lb.vm.id] },
  { name: 'inference', vms: nodes.filter((n) => !removed.has(n)).map((n) => n.vm.id) },
];
const removed = new Set<InferenceNode>();
const setService = () => double.setService({ id: SERVICE_ID, name: 'copilot', roles: roles() });

async function addNode(k: number): Promise<InferenceNode> {
  const vm = double.addVm({ name: `inference-${k}` });
  const node = await startInference({ double, vm, lb, k, build, model });
  nodes.push(node);
  return node;
}

const upstreamFile = () => readFile(lb.gateway.files.find((f) => f.path.endsWith('team-upstream.conf'))!.path, 'utf8');
const target = () => ({ origin: lb.origin, ca: lb.ca });
const ask = (key: number, content: string, o: Parameters<typeof chat>[3] = {}) =>
  chat(target(), KEYS[key]!, [{ role: 'user', content }], o);
const nodeAt = (address: string) => nodes.find((n) => n.address === address);

/** The backends the lb would render now: GET /service as the lb VM, read as its refresher reads it. */
async function currentBackends() {
  const vm = lb.vm;
  const client = new OneGateClient(
    { endpoint: double.endpoint, vmId: String(vm.id), token: vm.token, tokenFrom: 'test' },
    { log: quietLog, attempts: 1 },
  );
  const r = await client.getService();
  if (!r.ok) throw new Error(r.reason);
  return backendsFromService(r.value).backends;
}

/** A mutation of the lb: of its rendered files, of what its refresher read from /service, or both. */
interface LbMutation {
  files?: (files: FileSet) => FileSet;
  view?: (view: TeamView) => TeamView;
}

/** Applies a mutation to the lb now (and on its refresher's renders), runs `check`, then undoes it. */
async function withLbMutation<T>(m: LbMutation, check: () => Promise<T>): Promise<T> {
  lb.mutation.current = m.files ?? null;
  lb.viewMutation.current = m.view ?? null;
  await lb.apply({ role: 'lb', backends: await currentBackends() });
  try {
    return await check();
  } finally {
    lb.mutation.current = null;
    lb.viewMutation.current = null;
    await lb.apply({ role: 'lb', backends: await currentBackends() });
  }
}

/** The lb's client certificate and key (what its nginx shows the inference nodes). */
const lbClientPem = async () => ({
  cert: await readFile(path.join(lb.gateway.paths.tls.dir, 'lb-client.crt'), 'utf8'),
  key: await readFile(path.join(lb.gateway.paths.stateDir, 'tls', 'lb-client.key'), 'utf8'),
});

const replaceIn = (suffix: string, from: string | RegExp, to: string) => (files: FileSet) =>
  files.map((f) => (f.path.endsWith(suffix) ? { ...f, text: f.text.replace(from, to) } : f));

/** Mutation: a failed node's request is neither retried on another node nor sent to the overflow. */
const noRetryElsewhere = (files: FileSet) =>
  replaceIn(
    'proxy.conf',
    /proxy_next_upstream error timeout[^;]*;/,
    'proxy_next_upstream off;',
  )(replaceIn('slm-copilot.conf', '= @slm_copilot_overflow;', '= @slm_copilot_502;')(files));

const completions = async (key?: number) =>
  (await lbLog(lb)).filter((s) => s.path === '/v1/chat/completions' && (key === undefined || s.key === name(key)));

/**
 * The nodes that served a key's last `n` completions. nginx writes a request's log line when it
 * finalizes it, which can come just after the client has the answer: wait for the lines (`before`:
 * how many that key had before).
 */
async function lastServed(key: number | undefined, n: number, before: number): Promise<string[]> {
  let lines: Awaited<ReturnType<typeof completions>> = [];
  await waitFor(`${n} more access log lines`, async () => (lines = await completions(key)).length >= before + n, {
    timeoutMs: 10_000,
  });
  return lines.slice(-n).map((s) => (key === undefined ? `${s.key} ${s.upstream}` : s.upstream));
}

/**
 * One user's conversation, turn after turn with the same long prefix: which nodes served it, and turn
 * 2's cached share of its prompt.
 */
async function conversation(key: number, tag: string) {
  const prefix =
    `You are reviewing the ${tag} repository. ` + 'Context line about the code base and its tests. '.repeat(60);
  const history = [{ role: 'system', content: prefix }];
  const turns: ChatResult[] = [];
  const before = (await completions(key)).length;
  for (let t = 1; t <= 3; t++) {
    history.push({ role: 'user', content: `Turn ${t}: what next?` });
    const r = await chat(target(), KEYS[key]!, history, { maxTokens: 4 });
    expect(r.status, r.body).toBe(200);
    turns.push(r);
    history.push({ role: 'assistant', content: 'ok' });
  }
  const served = await lastServed(key, 3, before);
  const t2 = turns[1]!;
  return { served, cachedShare: (t2.cachedTokens ?? 0) / (t2.promptTokens ?? 1), turns };
}

describe.skipIf(unavailable !== null)('a OneFlow service: lb + inference nodes in network namespaces', () => {
  beforeAll(async () => {
    build = await ensureLlamaBuild({ variant: 'dispatch' });
    model = await ensureTinyModel({ llama: build });
    double = await startOneGateDouble();
    const lbVm = double.addVm({ name: 'lb' });
    const t0 = performance.now();
    lb = await startLb(double, lbVm, {
      ONEAPP_COPILOT_EXTRA_API_KEYS: KEYS.join(','),
      ONEAPP_COPILOT_RATE_LIMIT: '0',
    });
    for (const k of [1, 2, 3]) await addNode(k);
    setService();
    figures.push(`4 nodes started in ${Math.round(performance.now() - t0)} ms`);
  });

  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await lb?.stop().catch(() => undefined);
    await double?.close();
    removeTempRoots();
    if (figures.length) console.log(`team figures:\n  ${figures.join('\n  ')}`);
  });

  it('discovery: the lb renders the ready inference nodes from GET /service; they accept the lb only', async () => {
    const t0 = performance.now();
    await waitFor('the lb upstream to list the 3 nodes', async () => {
      const text = await upstreamFile();
      return nodes.every((n) => text.includes(`server ${n.address} max_conns=1 `));
    });
    // (the file is written before nginx reloads: until then the old worker serves the old, empty set)
    await lb.settled();
    const lbCert = await lbClientPem();
    await waitFor('every node to accept the lb certificate (learned from /service)', async () => {
      for (const n of nodes) {
        const r = await httpsGet(`https://${n.ns.nsAddress}:${n.gateway.httpsPort}/v1/models`, { ca: n.ca, ...lbCert });
        if (r.status !== 200) return false;
      }
      return true;
    });
    await waitFor('the lb /readyz to answer 200', async () => {
      const r = await httpsGet(`${lb.origin}/readyz`, { ca: lb.ca, timeoutMs: 5000 });
      return r.status === 200;
    });
    figures.push(
      `discovery (upstream rendered, /readyz 200) ${Math.round(performance.now() - t0)} ms after the service was set`,
    );
    // what each node published, as OneGate holds it
    for (const n of nodes) {
      const ut = double.vms.get(n.vm.id)!.userTemplate;
      expect(ut).toMatchObject({
        [PUBLISHED.address]: n.address,
        [PUBLISHED.ready]: 'YES',
        [PUBLISHED.draining]: 'NO',
        [PUBLISHED.slots]: '1',
        [PUBLISHED.contextSize]: '4096',
        [PUBLISHED.modelId]: 'devstral-small-2',
      });
      expect(ut[PUBLISHED.load]).toMatch(/^\d+$/);
      const clients = await readFile(path.join(n.gateway.paths.nginx.snippetsDir, 'lb-clients.conf'), 'utf8');
      expect(clients).toContain(`    ${lb.fingerprint} 1;`);
    }
    expect(double.vms.get(lb.vm.id)!.userTemplate[PUBLISHED.lbFingerprint]).toBe(lb.fingerprint);
    // the exact requests: the lb reads /service extended, with its own token and id
    const lbReads = double.requests.filter((r) => r.headers['x-onegate-vmid'] === String(lb.vm.id));
    expect(lbReads.some((r) => r.method === 'GET' && r.path === '/service' && r.status === 200)).toBe(true);
    expect(lbReads.every((r) => r.headers['x-onegate-token'] === lb.vm.token)).toBe(true);
    const r = await ask(0, 'hello');
    expect(r.status, r.status === 200 ? '' : `${r.body}\n${await teamLogs(lb, nodes)}`).toBe(200);

    // mutation: an lb that does not follow /service has no node: it serves nothing and is not ready
    const blind = await withLbMutation({ view: (view) => ({ ...view, backends: [] }) }, async () => ({
      chat: await ask(0, 'hello'),
      readyz: (await httpsGet(`${lb.origin}/readyz`, { ca: lb.ca, timeoutMs: 5000 })).status,
    }));
    expect(blind.chat.status).toBe(502);
    expect(JSON.parse(blind.chat.body), blind.chat.body).toHaveProperty('error.type');
    expect(blind.readyz).toBe(503);
  });

  it("users' keys are refused by an inference node; the lb's certificate is accepted", async () => {
    const n = nodes[0]!;
    const direct_ = `https://${n.ns.nsAddress}:${n.gateway.httpsPort}`;
    const body = JSON.stringify({
      model: 'devstral-small-2',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 1,
    });
    const post = (extra: { cert?: string; key?: string } = {}) =>
      httpsGet(`${direct_}/v1/chat/completions`, {
        ca: n.ca,
        method: 'POST',
        headers: { Authorization: `Bearer ${KEYS[0]}`, 'Content-Type': 'application/json' },
        body,
        ...extra,
      });
    const refused = await post();
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body).error.code).toBe('internal_node');
    const models = await httpsGet(`${direct_}/v1/models`, { ca: n.ca, headers: { 'x-api-key': KEYS[0]! } });
    expect(models.status).toBe(403);
    const withLbCert = await post(await lbClientPem());
    expect(withLbCert.status, withLbCert.body).toBe(200);

    // mutation: the inference gateway without its certificate check lets the user's key through
    n.mutation.current = replaceIn('slm-copilot.conf', 'if ($slm_from_lb = 0)', 'if ($slm_from_lb = 2)');
    await n.apply({ role: 'inference', lbFingerprints: [lb.fingerprint] });
    try {
      expect((await post()).status).toBe(200);
    } finally {
      n.mutation.current = null;
      await n.apply({ role: 'inference', lbFingerprints: [lb.fingerprint] });
    }
    expect((await post()).status).toBe(403);
  });

  it('key affinity: one key stays on one node (turn 2 cached), 8 keys use several nodes', async () => {
    const one = await conversation(0, 'alpha');
    expect(new Set(one.served).size, JSON.stringify(one.served)).toBe(1);
    expect(one.cachedShare).toBeGreaterThan(0.5);
    figures.push(`affinity: turn 2 served ${(one.cachedShare * 100).toFixed(0)} % of its prompt from cache`);

    const before = (await completions()).length;
    for (let k = 0; k < 8; k++) for (let i = 0; i < 2; i++) expect((await ask(k, `q${i}`)).status).toBe(200);
    const byKey = new Map<string, Set<string>>();
    for (const line of await lastServed(undefined, 16, before)) {
      const [k, upstream] = line.split(' ') as [string, string];
      byKey.set(k, (byKey.get(k) ?? new Set()).add(upstream));
    }
    expect(
      [...byKey.values()].every((s) => s.size === 1),
      JSON.stringify([...byKey]),
    ).toBe(true);
    const used = new Set([...byKey.values()].flatMap((s) => [...s]));
    expect(used.size).toBeGreaterThanOrEqual(2);
    figures.push(`8 keys spread over ${used.size} of 3 nodes`);

    // mutation: round robin instead of the hash on the key name
    const rr = await withLbMutation(
      { files: replaceIn('team-upstream.conf', 'hash $slm_key consistent;', '# round robin') },
      () => conversation(1, 'beta'),
    );
    expect(new Set(rr.served).size).toBeGreaterThan(1);
    expect(rr.cachedShare).toBeLessThanOrEqual(0.5);
  });

  it('a saturated node spills: concurrent streams of one key use several nodes, none fails', async () => {
    const run = () =>
      Promise.all([0, 1, 2].map((i) => ask(2, `spill ${i}`, { stream: true, maxTokens: 200, ignoreEos: true })));
    const before = (await completions(2)).length;
    const results = await run();
    for (const r of results) expect(r.done, r.body.slice(-200)).toBe(true);
    const served = new Set(await lastServed(2, 3, before));
    expect(served.size).toBeGreaterThan(1);
    // mutation: no max_conns, no spill
    const unspilled = await withLbMutation(
      { files: replaceIn('team-upstream.conf', / max_conns=\d+/g, '') },
      async () => {
        const mark = (await completions(2)).length;
        await run();
        return new Set(await lastServed(2, 3, mark));
      },
    );
    expect(unspilled.size).toBe(1);
  });

  it("load: the gateway's count (LocalAI's figure) equals llama-server's /slots, streaming and idle", async () => {
    const key = 4;
    const before = (await completions(key)).length;
    expect((await ask(key, 'which node?')).status).toBe(200);
    const node = nodeAt((await lastServed(key, 1, before))[0]!)!;
    const engineBusy = async () =>
      ((await (await fetch(`${node.engine.baseUrl}/slots`)).json()) as { is_processing: boolean }[]).filter(
        (x) => x.is_processing,
      ).length;
    let during: [number | undefined, number] | null = null;
    let sampled: Promise<void> | null = null;
    const stream = await ask(key, 'a long answer please', {
      stream: true,
      maxTokens: 1500,
      ignoreEos: true,
      onFirstByte: () => {
        // (a probe of the node's /readyz in progress at the same instant counts too: sample until they agree)
        sampled = waitFor('the two figures to agree', async () => {
          during = [(await node.gatewayLoad())?.load, await engineBusy()];
          return during[0] === during[1] * 100;
        });
      },
    });
    await sampled;
    expect(stream.done).toBe(true);
    expect(during).toEqual([100, 1]);
    await waitFor('the node to be idle', async () => (await engineBusy()) === 0);
    expect(await node.gatewayLoad()).toEqual({ slots: 1, busy: 0, queued: 0, load: 0 });
  });

  it('failover: a node killed mid-stream ends that stream promptly, the next 20 requests succeed', async () => {
    const key = 3;
    const before = (await completions(key)).length;
    expect((await ask(key, 'where am I?')).status).toBe(200);
    const victim = nodeAt((await lastServed(key, 1, before))[0]!)!;
    let killed: Promise<number> | null = null;
    const stream = await ask(key, 'a long answer please', {
      stream: true,
      maxTokens: 3000,
      ignoreEos: true,
      onFirstByte: () => void (killed = victim.kill()),
    });
    const killedAt = await killed!;
    expect(killedAt).toBeGreaterThan(0);
    expect(stream.done).toBe(false);
    expect(stream.cut ?? 'no error', stream.body.slice(-300)).not.toBe('no error');
    const endedAfterKill = Math.max(0, stream.endedAt - killedAt);
    expect(endedAfterKill).toBeLessThan(PROMPT_END_BOUND_MS);
    figures.push(
      `failover: the cut stream ended ${Math.round(endedAfterKill)} ms after its node was killed (${stream.cut})`,
    );
    const next = [];
    for (let i = 0; i < 20; i++) next.push(await ask((key + i) % 12, `after ${i}`));
    expect(next.map((r) => r.status)).toEqual(Array(20).fill(200));

    // mutation: no retry on another node and no overflow: the dead node's keys get errors
    const broken = await withLbMutation({ files: noRetryElsewhere }, async () => {
      await new Promise((r) => setTimeout(r, 11_000)); // the passive fail_timeout (10 s) passes
      return ask(key, 'and now?');
    });
    expect(broken.status).toBe(502);
    removed.add(victim);
    setService(); // OneFlow replaces the dead VM: it leaves /service
  });

  it('scale-out: a node added to /service receives traffic within a few refresh intervals', async () => {
    const node = await addNode(4);
    // its engine is loaded, but outside /service it knows no lb, so it says READY=NO
    await waitFor('node 4 to answer its /readyz', async () => {
      const r = await httpsGet(`https://${node.ns.nsAddress}:${node.gateway.httpsPort}/readyz`, { ca: node.ca });
      return r.status === 200;
    });
    await waitFor('node 4 to publish', () => double.vms.get(node.vm.id)!.userTemplate[PUBLISHED.ready] === 'NO');
    // control: up, but not in /service yet, it gets nothing
    for (let k = 0; k < KEYS.length; k++) await ask(k, 'before it joins', { maxTokens: 1 });
    expect((await lbLog(lb)).some((s) => s.upstream === node.address)).toBe(false);
    const servedBy4 = async (from = 0) => (await completions()).slice(from).some((s) => s.upstream === node.address);
    const known = await currentBackends();
    const t0 = performance.now();
    setService();
    let delay = -1;
    await waitFor(
      'a request served by node 4',
      async () => {
        for (let k = 0; k < KEYS.length; k++) await ask(k, 'who serves me?', { maxTokens: 1 });
        const hit = await servedBy4();
        if (hit && delay < 0) delay = performance.now() - t0;
        return hit;
      },
      { timeoutMs: 40 * REFRESH_MS + 60_000 },
    );
    figures.push(`scale-out: node 4 served its first request ${Math.round(delay)} ms after it joined /service`);

    // mutation: an lb whose upstream is the list it had before (a static list, not /service) never reaches
    // node 4, though some of these keys went there a moment ago
    const staticList = await withLbMutation({ view: (view) => ({ ...view, backends: known }) }, async () => {
      const mark = (await completions()).length;
      for (let k = 0; k < KEYS.length; k++) await ask(k, 'static list', { maxTokens: 1 });
      await lastServed(undefined, KEYS.length, mark);
      return servedBy4(mark);
    });
    expect(staticList).toBe(false);
    // each key asks once more, so that its last node is the lb's own choice again (the draining test reads it)
    const mark = (await completions()).length;
    for (let k = 0; k < KEYS.length; k++) await ask(k, 'back to /service', { maxTokens: 1 });
    await lastServed(undefined, KEYS.length, mark);
  });

  it('scale-in: an in-flight stream on a draining node completes; no new request reaches it', async () => {
    const live = nodes.filter((n) => !removed.has(n));
    const log = await lbLog(lb);
    const draining = live.at(-1)!;
    const key = KEYS.findIndex((_, k) => log.filter((s) => s.key === name(k)).at(-1)?.upstream === draining.address);
    expect(key).toBeGreaterThanOrEqual(0);
    const reloadsBefore = await lb.gateway.reloads();
    let reloadedAt = 0;
    const stream = await ask(key, 'a long answer please', {
      stream: true,
      maxTokens: 3600, // (as long as the 4096-token context allows: the lb must reload while it runs)
      ignoreEos: true,
      onFirstByte: () => {
        draining.draining.current = true;
        void waitFor(
          'the lb to drop the draining node',
          async () => !(await upstreamFile()).includes(draining.address),
        ).then(async () => {
          await waitFor('the reload', async () => (await lb.gateway.reloads()) > reloadsBefore);
          reloadedAt = performance.now();
        });
      },
    });
    expect(stream.done, `${stream.status} ${stream.cut ?? ''} ${stream.body.slice(-300)}`).toBe(true);
    expect(reloadedAt, 'the stream ended before the lb reloaded: nothing was in flight').toBeGreaterThan(0);
    expect(stream.endedAt).toBeGreaterThan(reloadedAt);
    const accessLog = path.join(draining.gateway.root, 'var/log/nginx/slm-copilot.access.log');
    // completions only (its refresher reads its /readyz all along)
    const inLog = async () =>
      (await readFile(accessLog, 'utf8')).split('\n').filter((l) => l.includes('"/v1/chat/completions"')).length;
    // (the stream's own line is written when nginx finalizes it: wait until the count holds still)
    let before = -1;
    await waitFor(
      'the draining node log to settle',
      async () => {
        const now = await inLog();
        const still = now === before;
        before = now;
        return still;
      },
      { intervalMs: 500 },
    );
    for (let i = 0; i < 5; i++) expect((await ask(key, `after drain ${i}`)).status).toBe(200);
    expect(await inLog()).toBe(before);

    // mutation: an lb that keeps the draining node keeps sending it new requests
    const stillThere = await withLbMutation(
      {
        view: () => ({
          role: 'lb',
          backends: live.map((n) => ({ vmId: String(n.vm.id), address: n.address, slots: 1 })),
        }),
      },
      async () => {
        for (let i = 0; i < 5; i++) await ask(key, `mutated ${i}`);
        return inLog();
      },
    );
    expect(stillThere).toBeGreaterThan(before);
  });

  it('scale-in: no request fails while an idle node is removed and stopped', async () => {
    const live = nodes.filter((n) => !removed.has(n) && !n.draining.current);
    const idle = live[0]!;
    const statuses: number[] = [];
    let running = true;
    const traffic = (async () => {
      for (let i = 0; running; i++) statuses.push((await ask(i % 16, `steady ${i}`, { maxTokens: 1 })).status);
    })();
    const reloadsBefore = await lb.gateway.reloads();
    removed.add(idle);
    setService();
    await waitFor('the lb to drop the removed node', async () => !(await upstreamFile()).includes(idle.address));
    await waitFor('the reload', async () => (await lb.gateway.reloads()) > reloadsBefore);
    // as the node's own drain does before it stops: its engine idle twice in a row
    let idleTicks = 0;
    await waitFor('the removed node to be idle', async () => {
      const slots = (await (await fetch(`${idle.engine.baseUrl}/slots`)).json()) as { is_processing: boolean }[];
      idleTicks = slots.every((x) => !x.is_processing) ? idleTicks + 1 : 0;
      return idleTicks >= 2;
    });
    await idle.stop();
    await new Promise((r) => setTimeout(r, 4 * REFRESH_MS));
    running = false;
    await traffic;
    expect(statuses.length).toBeGreaterThan(3);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);

    // mutation: the stopped node still in the lb's upstream (not dropped first), with no retry elsewhere:
    // the requests of the keys it had fail
    const gone = { vmId: String(idle.vm.id), address: idle.address, slots: 1 };
    const stale = await withLbMutation(
      {
        view: (view) => ({ ...view, backends: [...(view.role === 'lb' ? view.backends : []), gone] }),
        files: noRetryElsewhere,
      },
      async () => {
        const got: number[] = [];
        for (let k = 0; k < KEYS.length; k++) got.push((await ask(k, 'to a stopped node', { maxTokens: 1 })).status);
        return got;
      },
    );
    expect(stale.filter((s) => s !== 200).length).toBeGreaterThan(0);
  });
});
