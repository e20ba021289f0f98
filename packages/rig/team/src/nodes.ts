// The service's nodes, each in its own network namespace with real processes under a temp root:
//  - an inference node: llama-server (the appliance's rendered flags, tiny model) and the real nginx with
//    the rendered inference gateway (mutual TLS, no user keys);
//  - the lb: the real nginx with the rendered user-facing gateway (role lb).
// Each node's team refresher (lifecycle's TeamRefresher, the code the unit runs) runs in this process and
// talks to the OneGate double as that VM (its own token); it re-renders through renderGateway and installs
// through installGateway (nginx -t, reload, rollback) — the one config path the appliance uses.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { renderApplianceEngine } from '@slm-copilot/lifecycle/test-support/appliance-engine';
import type { Config } from '@slm-copilot/context-schema';
import { createNetns, type Netns } from '@slm-copilot/hardening/test-support/netns';
import {
  engineLoad,
  gatewayLoad,
  runTeam,
  type EngineLoad,
  type InferenceStatus,
  type TeamDeps,
  type TeamView,
} from '@slm-copilot/lifecycle';
import {
  ensureLbClientCertificate,
  ensureSelfSigned,
  GATEWAY_LOAD_PATH,
  installGateway,
  renderGateway,
  type GatewayRenderOptions,
} from '@slm-copilot/nginx-config';
import { httpsGet } from '@slm-copilot/nginx-config/test-support/client';
import { startGateway, tempRoot, testPaths, type Gateway } from '@slm-copilot/nginx-config/test-support/nginx';
import { waitFor } from '@slm-copilot/nginx-config/test-support/poll';
import { OneGateClient } from '@slm-copilot/onegate';
import type { DoubleVm, OneGateDouble } from '@slm-copilot/onegate/test-support/onegate-double';
import { createLogger, freePort, type FileSet, type Logger } from '@slm-copilot/task-kit';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';
import { startLlamaServer, type GgufModel, type LlamaBuild, type LlamaServer } from '@slm-copilot/testbed';
import { $ } from 'zx';
import { linkNamespaces, type Link } from './links.js';

/** The refreshers' log: quiet unless SLM_TEAM_DEBUG=1 (then every node's lines on stderr). */
const refresherLog: Logger = process.env.SLM_TEAM_DEBUG === '1' ? createLogger() : quietLog;

/** The refresh interval of every node in the test (the appliance's default is 5 s). */
export const REFRESH_MS = 300;

/** A change to the rendered files (mutation checks), applied on every render of that node. */
export type Mutation = (files: FileSet) => FileSet;

interface RunningNode {
  vm: DoubleVm;
  ns: Netns;
  gateway: Gateway;
  /** The CA that signed the node's leaf (clients trust it). */
  ca: string;
  /** Mutation applied to this node's renders from now on (null: none). */
  mutation: { current: Mutation | null };
  /** Renders and installs the gateway for a view now (what the refresher does). */
  apply(view: TeamView): Promise<boolean>;
  stopRefresher(): Promise<void>;
}

export interface InferenceNode extends RunningNode {
  link: Link;
  /** What the node publishes and the lb's upstream names: `<link address>:<port>`. */
  address: string;
  engine: LlamaServer;
  /** The load its gateway measures (the figure an engine without /slots, LocalAI, publishes). */
  gatewayLoad(): Promise<EngineLoad | null>;
  /** The node is stopping: it publishes DRAINING=YES from the next tick on. */
  draining: { current: boolean };
  /** SIGKILL the engine and nginx (a node that dies); resolves with when the signals were sent. */
  kill(): Promise<number>;
  stop(): Promise<void>;
}

export interface LbNode extends RunningNode {
  /** A change to what the lb's refresher read from /service (mutation checks), applied before each render. */
  viewMutation: { current: ((view: TeamView) => TeamView) | null };
  /** Resolves once the render begun last (by the refresher or a test) is installed and nginx reloaded. */
  settled(): Promise<void>;
  /** `https://<ns address>:<port>` (no /v1). */
  origin: string;
  fingerprint: string;
  stop(): Promise<void>;
}

const oneGateClient = (double: OneGateDouble, vm: DoubleVm) =>
  new OneGateClient(
    { endpoint: double.endpoint, vmId: String(vm.id), token: vm.token, tokenFrom: 'test' },
    { log: quietLog, attempts: 1, timeoutMs: 3000 },
  );

/** Starts a node's refresher loop; returns its stop. */
function startRefresher(deps: TeamDeps): () => Promise<void> {
  const abort = new AbortController();
  const loop = runTeam(deps, { intervalMs: REFRESH_MS, signal: abort.signal });
  return async () => {
    abort.abort();
    await loop;
  };
}

/** The one config path: render (with the node's mutation, if any), nginx -t, reload, rollback. */
function applier(
  ns: Netns,
  gw: () => Gateway,
  config: () => Config,
  options: (view: TeamView) => GatewayRenderOptions,
  mutation: { current: Mutation | null },
) {
  return async (view: TeamView): Promise<boolean> => {
    let files = renderGateway(config(), options(view));
    if (mutation.current) files = mutation.current(files);
    const reloads = await gw().reloads();
    const r = await installGateway(files, {
      // nginx -t binds the listen addresses: it runs in the node's namespace, as on the node
      testConfigCommand: [...ns.exec, ...gw().testCommand],
      reload: [...ns.exec, ...gw().reloadCommand],
      log: refresherLog,
    });
    // `nginx -s reload` only signals: wait until the new workers run and the old ones stop accepting
    if (r.reloaded) {
      await waitFor('the reload', async () => (await gw().reloads()) > reloads);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return r.reloaded;
  };
}

export async function startLb(double: OneGateDouble, vm: DoubleVm, env: Record<string, string>): Promise<LbNode> {
  const ns = await createNetns();
  const root = await tempRoot('team-lb');
  const paths = testPaths(root, await freePort());
  const ss = await ensureSelfSigned({ paths, hostname: null, ipAddresses: [ns.nsAddress], log: quietLog });
  const client = await ensureLbClientCertificate(paths, quietLog);
  const clientCertificate = { certificate: client.certificate, key: client.key };
  const mutation: { current: Mutation | null } = { current: null };
  const listenAddresses = [ns.nsAddress];
  const lbEnv = { ...env, ONEAPP_COPILOT_ROLE: 'lb' };
  const gateway = await startGateway({
    root,
    tls: ss.served,
    trustFile: paths.tls.caCert,
    enginePort: paths.engine.port,
    env: lbEnv,
    render: { listenAddresses, team: { backends: [], clientCertificate } },
    wrap: ns.exec,
    readyAddress: ns.nsAddress,
  });
  const options = (view: TeamView): GatewayRenderOptions => ({
    paths,
    keys: { main: gateway.config.apiKey!, extra: gateway.config.extraApiKeys },
    tls: ss.served,
    httpPort: gateway.httpPort,
    listenAddresses,
    keyFileOwner: null,
    team: { backends: view.role === 'lb' ? view.backends : [], clientCertificate },
  });
  const applyFiles = applier(
    ns,
    () => gateway,
    () => gateway.config,
    options,
    mutation,
  );
  const viewMutation: LbNode['viewMutation'] = { current: null };
  let applying: Promise<unknown> = Promise.resolve();
  const apply = (view: TeamView) => {
    const applied = applyFiles(viewMutation.current ? viewMutation.current(view) : view);
    applying = applied.catch(() => undefined);
    return applied;
  };
  const stopRefresher = startRefresher({
    role: 'lb',
    oneGate: oneGateClient(double, vm),
    apply,
    lbFingerprint: client.fingerprint,
    log: refresherLog,
  });
  return {
    vm,
    ns,
    gateway,
    ca: await readFile(paths.tls.caCert, 'utf8'),
    mutation,
    viewMutation,
    settled: async () => void (await applying),
    apply,
    stopRefresher,
    origin: `https://${ns.nsAddress}:${gateway.httpsPort}`,
    fingerprint: client.fingerprint,
    stop: async () => {
      await stopRefresher();
      await gateway.stop();
      await ns.destroy();
    },
  };
}

export interface InferenceSpec {
  double: OneGateDouble;
  vm: DoubleVm;
  lb: LbNode;
  /** The node's link number (1, 2, …): its link's /30. */
  k: number;
  build: LlamaBuild;
  model: GgufModel;
}

const INFERENCE_ENV = {
  ONEAPP_COPILOT_ROLE: 'inference',
  ONEAPP_COPILOT_ENGINE: 'llama-server',
  ONEAPP_COPILOT_THREADS: '1',
  ONEAPP_COPILOT_PARALLEL: '1',
  ONEAPP_COPILOT_CONTEXT_SIZE: '4096',
  ONEAPP_COPILOT_PROMPT_CACHE_PERSIST: 'NO',
};

type NodeState = { address: string; ns: Netns; port: number; ca: string; enginePort: number; config: Config };

/** The gateway's own count, read from inside the node's namespace (it answers the node itself only). */
async function gatewayLoadOf(n: NodeState): Promise<EngineLoad | null> {
  const url = `https://${n.ns.nsAddress}:${n.port}${GATEWAY_LOAD_PATH}`;
  const r = await $({ quiet: true, nothrow: true })`${n.ns.exec} curl -sk --max-time 3 ${url}`;
  return gatewayLoad(r.exitCode === 0 ? r.stdout : null, n.config.parallelSlots);
}

/**
 * The node's status as its refresher publishes it (as lifecycle's productionStatus): readiness from its own
 * /readyz, load from the engine's /slots, else from its gateway.
 */
async function inferenceStatus(n: NodeState, draining: boolean): Promise<InferenceStatus> {
  const ready = await httpsGet(`https://${n.ns.nsAddress}:${n.port}/readyz`, { ca: n.ca, timeoutMs: 3000 })
    .then((r) => r.status === 200)
    .catch(() => false);
  const engine = `http://${n.ns.nsAddress}:${n.enginePort}`;
  const slots = await fetch(`${engine}/slots`, { signal: AbortSignal.timeout(3000) })
    .then((r) => r.json() as Promise<unknown>)
    .catch(() => null);
  const metrics = await fetch(`${engine}/metrics`, { signal: AbortSignal.timeout(3000) })
    .then((r) => (r.ok ? r.text() : null))
    .catch(() => null);
  return {
    address: n.address,
    ready,
    draining,
    modelId: n.config.modelId,
    contextSize: n.config.contextSize,
    slots: n.config.parallelSlots,
    load: engineLoad(slots, metrics) ?? (await gatewayLoadOf(n)),
  };
}

export async function startInference(spec: InferenceSpec): Promise<InferenceNode> {
  const { double, vm, lb, k, build, model } = spec;
  const ns = await createNetns();
  const link = await linkNamespaces(lb.ns, ns, k);
  const root = await tempRoot(`team-inf${k}`);
  const enginePort = await freePort();
  const rendered = await renderApplianceEngine({
    root,
    model: model.path,
    sha256: model.sha256,
    enginePort,
    overrides: INFERENCE_ENV,
  });
  // the engine listens on the namespace's host-side address: its nginx and this test (readiness, /slots) reach it
  const base = testPaths(root, enginePort);
  const paths = { ...base, engine: { ...base.engine, host: ns.nsAddress } };
  const engine = await startLlamaServer({
    binary: 'ip',
    args: ['netns', 'exec', ns.name, build.llamaServer, ...rendered.args],
    host: ns.nsAddress,
    port: enginePort,
    readyTimeoutMs: 5 * 60_000,
  });
  const ss = await ensureSelfSigned({ paths, hostname: null, ipAddresses: [ns.nsAddress, link.nodeAddress] });
  const mutation: { current: Mutation | null } = { current: null };
  const listenAddresses = [ns.nsAddress, link.nodeAddress];
  // it starts knowing no load balancer (every request refused) and learns the lb's certificate from /service
  const gateway = await startGateway({
    root,
    tls: ss.served,
    trustFile: paths.tls.caCert,
    enginePort,
    env: INFERENCE_ENV,
    render: { paths, listenAddresses, internal: { lbFingerprints: [] } },
    wrap: ns.exec,
    readyAddress: ns.nsAddress,
  });
  const address = `${link.nodeAddress}:${gateway.httpsPort}`;
  const ca = await readFile(paths.tls.caCert, 'utf8');
  const options = (view: TeamView): GatewayRenderOptions => ({
    paths,
    keys: { main: gateway.config.apiKey!, extra: gateway.config.extraApiKeys },
    tls: ss.served,
    httpPort: gateway.httpPort,
    listenAddresses,
    keyFileOwner: null,
    internal: { lbFingerprints: view.role === 'inference' ? view.lbFingerprints : [] },
  });
  const apply = applier(
    ns,
    () => gateway,
    () => gateway.config,
    options,
    mutation,
  );
  const draining = { current: false };
  const state: NodeState = { address, ns, port: gateway.httpsPort, ca, enginePort, config: gateway.config };
  const stopRefresher = startRefresher({
    role: 'inference',
    oneGate: oneGateClient(double, vm),
    apply,
    status: (d) => inferenceStatus(state, d || draining.current),
    log: refresherLog,
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopRefresher();
    await engine.stop(2000);
    await gateway.stop();
    await ns.destroy();
  };
  return {
    vm,
    ns,
    gateway,
    ca,
    mutation,
    apply,
    stopRefresher,
    link,
    address,
    engine,
    gatewayLoad: () => gatewayLoadOf(state),
    draining,
    kill: async () => {
      const refresherStopped = stopRefresher();
      // every process of the namespace at once (nginx's workers too, not only its master): the node dies
      const pids = (await $({ quiet: true, nothrow: true })`ip netns pids ${ns.name}`).stdout.split('\n');
      const at = performance.now();
      for (const pid of pids.map(Number).filter((p) => p > 0)) process.kill(pid, 'SIGKILL');
      await refresherStopped;
      await engine.stop(0);
      await gateway.stop();
      return at;
    },
    stop,
  };
}

/** The lb's access log as records: key name, status and the node that served it (the last one tried). */
export interface Served {
  key: string;
  status: number;
  upstream: string;
  path: string;
}

export async function lbLog(lb: LbNode): Promise<Served[]> {
  const text = await readFile(path.join(lb.gateway.root, 'var/log/nginx/slm-copilot.access.log'), 'utf8').catch(
    () => '',
  );
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { key: string; status: number; upstream_addr: string; path: string })
    .map((r) => ({ key: r.key, status: r.status, upstream: r.upstream_addr.split(', ').at(-1) ?? '', path: r.path }));
}

/** The last lines of the lb's and each node's nginx logs: what a failed request through the lb is explained by. */
export async function teamLogs(lb: LbNode, nodes: readonly InferenceNode[], lines = 30): Promise<string> {
  const tail = async (name: string, root: string, file: string) => {
    const text = await readFile(path.join(root, 'var/log/nginx', file), 'utf8').catch(() => '(none)');
    return `--- ${name} ${file}\n${text.trimEnd().split('\n').slice(-lines).join('\n')}`;
  };
  const parts = [
    await tail('lb', lb.gateway.root, 'slm-copilot.error.log'),
    await tail('lb', lb.gateway.root, 'slm-copilot.access.log'),
  ];
  for (const n of nodes) parts.push(await tail(n.address, n.gateway.root, 'slm-copilot.error.log'));
  return parts.join('\n');
}
