// The team refresher: the loop the service roles run (slm-copilot-team.service, `slm-copilot-service team`).
//  - lb: publishes its client certificate fingerprint once, then every interval reads GET /service, and
//    when the set of ready, non-draining inference nodes changed renders the gateway again through the one
//    render path (renderGateway → installGateway: nginx -t, reload, rollback). nginx's graceful reload lets
//    the old workers finish the requests in flight on a removed node (drain on the lb side).
//  - inference: every interval publishes its address, readiness, model, context, slots, load (PUT /vm, only
//    when a value changed) and keeps its list of accepted lb certificates in step with GET /service. On
//    stop (the VM shuts down: OneFlow scales in) it publishes DRAINING=YES, then waits until its engine is
//    idle or the bound passes before the engine and nginx are stopped.
// OneGate absent or failing never empties anything: the last applied set keeps serving.
import type { Backend } from '@slm-copilot/nginx-config';
import type { OneGateClient } from '@slm-copilot/onegate';
import type { Logger } from '@slm-copilot/task-kit';
import { inferencePublication, type InferenceStatus } from './load.js';
import { backendSetKey, backendsFromService, lbFingerprintsFromService, PUBLISHED } from './service-view.js';

export type TeamView = { role: 'lb'; backends: Backend[] } | { role: 'inference'; lbFingerprints: string[] };

export interface TeamDeps {
  role: 'lb' | 'inference';
  oneGate: Pick<OneGateClient, 'getService' | 'updateVm'>;
  /** Renders and installs the gateway for this view (the one render path); true when nginx was reloaded. */
  apply(view: TeamView): Promise<boolean>;
  /** lb: the fingerprint it publishes. */
  lbFingerprint?: string;
  /** inference: the node's status now. */
  status?(draining: boolean): Promise<InferenceStatus>;
  log: Logger;
  now?: () => number;
}

export interface TickResult {
  /** The view was rendered and installed this tick. */
  applied: boolean;
  /** The set (lb: backends; inference: fingerprints) as a comparable key, null when OneGate failed. */
  key: string | null;
}

export class TeamRefresher {
  private lastKey: string | null = null;
  private lastPublished = '';
  private lastProblem = '';
  private fingerprintPublished = false;

  constructor(private readonly deps: TeamDeps) {}

  /** One pass: publish what changed, read /service, apply the view when it changed. */
  async tick(): Promise<TickResult> {
    await this.publish(false);
    const service = await this.deps.oneGate.getService();
    if (!service.ok) {
      this.once(`OneGate GET /service: ${service.reason}; the current gateway keeps serving`);
      return { applied: false, key: null };
    }
    this.lastProblem = '';
    let view: TeamView;
    let key: string;
    if (this.deps.role === 'lb') {
      const { backends, skipped } = backendsFromService(service.value);
      view = { role: 'lb', backends };
      key = backendSetKey(backends);
      if (key !== this.lastKey && skipped.length) this.deps.log.info(`inference nodes left out: ${skipped.join('; ')}`);
    } else {
      const lbFingerprints = lbFingerprintsFromService(service.value);
      view = { role: 'inference', lbFingerprints };
      key = lbFingerprints.join(',');
    }
    if (key === this.lastKey) return { applied: false, key };
    try {
      await this.deps.apply(view);
    } catch (error) {
      // installGateway restored the previous files: nginx keeps the last good set; try again next tick
      this.deps.log.error(`could not apply the service's new set: ${(error as Error).message.split('\n')[0]}`);
      return { applied: false, key: this.lastKey };
    }
    this.deps.log.info(
      view.role === 'lb'
        ? `upstream: ${view.backends.map((b) => `${b.address} (VM ${b.vmId}, ${b.slots} slots)`).join(', ') || 'none'}`
        : `accepted load balancers: ${view.lbFingerprints.length}`,
    );
    this.lastKey = key;
    return { applied: true, key };
  }

  /** PUT /vm of what this node publishes, when it changed (lb: its fingerprint, once). */
  async publish(draining: boolean): Promise<boolean> {
    const { deps } = this;
    if (deps.role === 'lb') {
      if (this.fingerprintPublished || !deps.lbFingerprint) return false;
      const r = await deps.oneGate.updateVm({ [PUBLISHED.lbFingerprint]: deps.lbFingerprint });
      if (!r.ok) this.once(`OneGate PUT /vm (client certificate fingerprint): ${r.reason}`);
      this.fingerprintPublished = r.ok;
      return r.ok;
    }
    if (!deps.status) return false;
    const status = await deps.status(draining);
    // ready only once it accepts a load balancer: before that every request the lb sent would get 403
    const pairs = inferencePublication({ ...status, ready: status.ready && Boolean(this.lastKey) });
    const text = JSON.stringify(pairs);
    if (text === this.lastPublished) return false;
    const r = await deps.oneGate.updateVm(pairs);
    if (!r.ok) {
      this.once(`OneGate PUT /vm: ${r.reason}`);
      return false;
    }
    if (pairs[PUBLISHED.ready] !== JSON.parse(this.lastPublished || '{}')[PUBLISHED.ready]) {
      deps.log.info(
        `published ${PUBLISHED.ready}=${pairs[PUBLISHED.ready]} (${PUBLISHED.draining}=${draining ? 'YES' : 'NO'})`,
      );
    }
    this.lastPublished = text;
    return true;
  }

  /** A problem logged once until it changes (a OneGate outage is one line, not one per tick). */
  private once(problem: string): void {
    if (problem === this.lastProblem) return;
    this.lastProblem = problem;
    this.deps.log.warn(problem);
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

export interface DrainOptions {
  /** The whole wait's bound. */
  boundMs: number;
  /** Wait at least this long (the lb must have read DRAINING=YES and reloaded). */
  minimumMs: number;
  pollMs: number;
}

/**
 * Inference node stopping: DRAINING=YES (READY=NO) published, then wait until the engine has had nothing
 * to do twice in a row after the minimum, or the bound. Returns whether it ended idle.
 */
export async function drain(refresher: TeamRefresher, deps: TeamDeps, o: DrainOptions): Promise<boolean> {
  const now = deps.now ?? Date.now;
  const start = now();
  await refresher.publish(true);
  deps.log.info(
    `draining: published ${PUBLISHED.draining}=YES; waiting for the requests in flight (≤ ${o.boundMs / 1000} s)`,
  );
  let idle = 0;
  while (now() - start < o.boundMs) {
    const s = await deps.status!(true);
    idle = s.load && s.load.busy + s.load.queued === 0 ? idle + 1 : 0;
    if (idle >= 2 && now() - start >= o.minimumMs) {
      deps.log.info(`drained in ${Math.round((now() - start) / 1000)} s`);
      return true;
    }
    await sleep(o.pollMs);
  }
  deps.log.warn(`drain bound reached (${o.boundMs / 1000} s) with requests still running: stopping anyway`);
  return false;
}

/** The loop: a tick every `intervalMs` until `signal` aborts; then an inference node drains. */
export async function runTeam(
  deps: TeamDeps,
  o: { intervalMs: number; signal: AbortSignal; drain?: DrainOptions },
): Promise<void> {
  const refresher = new TeamRefresher(deps);
  while (!o.signal.aborted) {
    await refresher.tick().catch((error: Error) => deps.log.error(`team refresh: ${error.message}`));
    await sleep(o.intervalMs, o.signal);
  }
  if (deps.role === 'inference' && o.drain) await drain(refresher, deps, o.drain);
}
