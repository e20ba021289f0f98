import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import type { EnginePlan } from '@slm-copilot/localai-install';
import { formatDuration, type Logger } from '@slm-copilot/task-kit';
import {
  readProcessProgress,
  watchEngine,
  type EngineProbe,
  type UnitStatus,
  type WatchBounds,
} from './engine-watch.js';
import type { ServiceControl } from './services.js';
import { engineBinary, otherEngine, type EngineName } from './serving.js';

/** One engine's attempt: ready, or why not (and whether it may still become ready: a timeout). */
export type Attempt =
  { engine: EngineName; ready: true } | { engine: EngineName; ready: false; reason: string; stillLoading: boolean };

export interface ServeResult {
  requested: EngineName;
  /** The engine /readyz reflects, null when none became ready. */
  serving: EngineName | null;
  attempts: Attempt[];
  /** The plan of the serving engine when it is the fallback (configure rendered the requested one). */
  fallbackPlan: EnginePlan | null;
}

export interface ServeContext {
  config: Config;
  paths: AppliancePaths;
  unit: string;
  services: ServiceControl;
  log: Logger;
  bounds: WatchBounds;
  /** /readyz through the gateway. */
  readyz: () => Promise<number>;
  /** Whether configure changed the requested engine's files (restart) or not (start if stopped). */
  restartRequested: boolean;
  /** Renders and installs engine + gateway files for another engine (configure's render step). */
  renderFor: (engine: EngineName) => Promise<EnginePlan>;
  now?: () => number;
}

/** Status when the ServiceControl cannot tell (no systemd): only /readyz and the time bound decide. */
const UNKNOWN: UnitStatus = { activeState: 'unknown', subState: 'unknown', result: 'unknown', restarts: 0, pids: [] };

function probeFor(ctx: ServeContext): EngineProbe {
  return {
    status: () => (ctx.services.unitStatus ? ctx.services.unitStatus(ctx.unit) : Promise.resolve(UNKNOWN)),
    progress: (pid) => readProcessProgress(pid),
    readyz: ctx.readyz,
  };
}

async function executable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** Starts one engine and watches it until it is ready or has failed by the bounds. */
async function attempt(ctx: ServeContext, engine: EngineName, restart: boolean, timeoutMs: number): Promise<Attempt> {
  const binary = engineBinary(engine, ctx.paths);
  if (!(await executable(binary))) {
    return { engine, ready: false, reason: `binary missing or not executable: ${binary}`, stillLoading: false };
  }
  try {
    if (restart) await ctx.services.restart(ctx.unit);
    else await ctx.services.ensureStarted(ctx.unit);
  } catch (error) {
    const why = (error as Error).message.split('\n')[0];
    return { engine, ready: false, reason: `start failed: ${why}`, stillLoading: false };
  }
  const watch = () => watchEngine(probeFor(ctx), { ...ctx.bounds, timeoutMs });
  const outcome = await ctx.log.phase(`wait for ${engine} to load the model`, watch);
  if (outcome.ready) {
    ctx.log.info(`${engine} answers: /readyz 200 after ${formatDuration(outcome.tookMs)}`);
    return { engine, ready: true };
  }
  return { engine, ready: false, reason: outcome.reason, stillLoading: outcome.failure === 'timeout' };
}

/**
 * Serves with the requested engine, or — when it fails (binary missing, start failure, crash
 * loop, no progress) — with the other one, re-rendered through configure's render step so the
 * gateway's /readyz reflects it. An engine still loading at the time bound is left running and
 * not replaced: the other engine would load the same model from the same disk.
 * The whole wait stays within `bounds.timeoutMs`.
 */
export async function serveAnEngine(ctx: ServeContext): Promise<ServeResult> {
  const now = ctx.now ?? (() => performance.now());
  const deadline = now() + ctx.bounds.timeoutMs;
  const requested = ctx.config.engine;
  const first = await attempt(ctx, requested, ctx.restartRequested, ctx.bounds.timeoutMs);
  if (first.ready) return { requested, serving: requested, attempts: [first], fallbackPlan: null };
  if (first.stillLoading) {
    ctx.log.error(`${requested}: ${first.reason}; it is left running (it may still become ready)`);
    return { requested, serving: null, attempts: [first], fallbackPlan: null };
  }
  const other = otherEngine(requested);
  ctx.log.warn(`engine ${requested} did not become ready (${first.reason}): falling back to ${other}`);
  const plan = await ctx.renderFor(other);
  await ctx.services.daemonReload();
  const second = await attempt(ctx, other, true, Math.max(0, deadline - now()));
  if (!second.ready) {
    ctx.log.error(`the fallback engine ${other} did not become ready either: ${second.reason}`);
    return { requested, serving: null, attempts: [first, second], fallbackPlan: plan };
  }
  ctx.log.warn(`serving with ${other} (fallback): ${requested} did not become ready: ${first.reason}`);
  return { requested, serving: other, attempts: [first, second], fallbackPlan: plan };
}
