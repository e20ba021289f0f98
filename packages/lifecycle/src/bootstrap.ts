import path from 'node:path';
import { Agent, request } from 'node:https';
import type { AppliancePaths } from '@slm-copilot/context-schema';
import { readManifest } from '@slm-copilot/model-fetch';
import { letsEncryptRequest, obtainLetsEncrypt, type ServedCertificate } from '@slm-copilot/nginx-config';
import {
  endpointOf,
  oneGatePublication,
  publishToOneGate,
  renderBanner,
  renderReport,
  reportSecrets,
  type ReportInputs,
} from '@slm-copilot/report-writer';
import { applyFileSet, ExitCode, formatError, TaskError } from '@slm-copilot/task-kit';
import { engineVersion } from './configure.js';
import { DEFAULT_WATCH_BOUNDS, type WatchBounds } from './engine-watch.js';
import { serveAnEngine, type ServeResult } from './fallback.js';
import { stagePaths, type StageOptions } from './options.js';
import { mappedCpuVariant } from './cpu-variant.js';
import { renderServing, servingInputs, type EngineName, type Serving } from './serving.js';
import { readJson, stateFiles, writeJson, type InstalledImage, type PendingWork } from './state.js';
import { TEAM_UNIT } from './team/unit.js';
import { waitForABackend } from './team/lb-ready.js';

/**
 * The bound on the whole wait for an engine, fallback included (a 14 GB GGUF from a cold disk
 * takes minutes). Within it, an engine that stops making progress fails sooner: see WatchBounds.
 */
export const READY_TIMEOUT_MS = 20 * 60_000;

/**
 * GET https://127.0.0.1:<port><path> from the VM itself, trusting any certificate (our own nginx on
 * loopback; no key is sent): the status (0 when unreachable) and the body.
 */
export function loopbackGet(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        method: 'GET',
        agent: new Agent({ rejectUnauthorized: false }),
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (body.length < 65_536) body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', () => resolve({ status: 0, body: '' }));
      },
    );
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** The gateway's /readyz status on loopback (0 when it does not answer). */
export const readyz = async (port: number): Promise<number> => (await loopbackGet(port, '/readyz')).status;

type StoredInputs = Omit<ReportInputs, 'paths'>;

/** What the operator can do, by how the engines failed. */
function failureFix(result: ServeResult | null, inputs: StoredInputs): string {
  const health = `${endpointOf(inputs)}/readyz`;
  if (result?.attempts.some((a) => !a.ready && a.stillLoading)) {
    return (
      `the engine is still loading the model and may become ready later: watch ${health}; ` +
      'if it never does, check RAM, disk speed and journalctl -u slm-copilot-engine'
    );
  }
  return (
    'journalctl -u slm-copilot-engine -n 100 and /var/log/one-appliance/bootstrap.log show why; ' +
    'fix the VM (RAM, CPU model host-passthrough) or set ONEAPP_COPILOT_ENGINE, then reboot'
  );
}

/** Writes the report (with endpoint and key) and the banner: on every outcome of bootstrap. */
async function writeReport(report: ReportInputs, file: string): Promise<void> {
  await applyFileSet('/', [...renderReport(report), ...renderBanner(report)]);
  const { paths: _paths, ...stored } = report;
  await writeJson(file, stored);
}

interface ConfiguredState {
  pending: PendingWork;
  inputs: StoredInputs;
  installed: InstalledImage;
}

/** What configure left for bootstrap; null when configure has not run (or not to the end). */
async function readConfigured(paths: AppliancePaths): Promise<ConfiguredState | null> {
  const files = stateFiles(paths);
  const pending = await readJson<PendingWork>(files.pending);
  const inputs = await readJson<StoredInputs>(files.reportInputs);
  const installed = await readJson<InstalledImage>(files.installed);
  return pending && inputs && installed ? { pending, inputs, installed } : null;
}

/**
 * Configure's render step again, from what configure recorded, for another engine (the fallback) or
 * another certificate (Let's Encrypt): the same Config through the same inputs builder.
 */
function renderer(opts: StageOptions, paths: AppliancePaths, state: ConfiguredState) {
  const { pending, inputs, installed } = state;
  return async (engine: EngineName, tls?: ServedCertificate): Promise<Serving> => {
    if (!pending.render) {
      const why = 'configure recorded no render facts (an older configure ran): cannot switch engines';
      throw new TaskError(why, { exitCode: ExitCode.failure });
    }
    const manifest = await readManifest(path.join(paths.modelsDir, installed.model.file));
    if (!manifest) throw new TaskError(`no manifest for ${installed.model.file}`, { exitCode: ExitCode.integrity });
    const facts = { host: pending.render.host, tls: tls ?? pending.render.tls, manifest };
    return renderServing(await servingInputs({ ...inputs.config, engine }, paths, facts), opts);
  };
}

/** Bootstrap's render step from the recorded state (the engine configure chose unless given): for tests. */
export async function renderFromState(opts: StageOptions, engine?: EngineName): Promise<Serving> {
  const paths = stagePaths(opts);
  const state = await readConfigured(paths);
  if (!state) throw new TaskError('nothing configured yet: run configure first', { exitCode: ExitCode.usage });
  return renderer(opts, paths, state)(engine ?? state.inputs.config.engine);
}

/**
 * bootstrap (every boot, after configure): start or restart only what changed, wait until the
 * model really answers — with the requested engine, or the other one when it fails — get a Let's
 * Encrypt certificate if asked, then publish the endpoint. The report (endpoint and key) is
 * written on every outcome, failure included.
 */
export async function bootstrap(opts: StageOptions & { readyTimeoutMs?: number }): Promise<void> {
  const { log, services } = opts;
  const paths = stagePaths(opts);
  const files = stateFiles(paths);
  const state = await readConfigured(paths);
  if (!state) throw new TaskError('nothing configured yet: run configure first', { exitCode: ExitCode.usage });
  const { pending, inputs, installed } = state;
  log.addSecret(inputs.apiKey);
  const timeoutMs = opts.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const bounds: WatchBounds = { ...DEFAULT_WATCH_BOUNDS, timeoutMs, ...opts.watch };
  const requested = inputs.config.engine;
  const render = renderer(opts, paths, state);
  const serving = { requested, serving: null, fallbackReason: null };
  let report: ReportInputs = { ...inputs, paths, serving, failure: null };
  if (inputs.config.role === 'lb') {
    // the service's load balancer runs no engine (one left from another role is stopped): the team refresher
    // finds its inference nodes (OneGate); it is ready (and published like a single VM) once one answers through it
    await services.daemonReload();
    await services.stopAndDisable?.(pending.engineUnit);
    await services.ensureStarted('nginx');
    await services.restart(TEAM_UNIT);
    await writeReport(report, files.reportInputs);
    await waitForABackend(() => readyz(inputs.config.httpsPort), timeoutMs, log);
    await publishToOneGate(oneGatePublication(report, opts.env), {
      env: opts.env,
      log,
      secrets: reportSecrets(report),
    });
    return;
  }

  let result: ServeResult;
  try {
    await services.daemonReload();
    await services.ensureStarted('nginx');
    result = await serveAnEngine({
      config: inputs.config,
      paths,
      unit: pending.engineUnit,
      services,
      log,
      bounds,
      readyz: () => readyz(inputs.config.httpsPort),
      restartRequested: pending.restartEngine,
      renderFor: async (engine) => (await render(engine)).plan,
    });
    await writeJson(files.pending, { ...pending, restartEngine: false });
  } catch (error) {
    const what = [`bootstrap: ${formatError(error).split('\n')[0]}`];
    report = { ...report, failure: { what, fix: failureFix(null, inputs) } };
    await writeReport(report, files.reportInputs);
    throw error;
  }

  const firstReason = result.attempts[0]!.ready ? null : result.attempts[0]!.reason;
  report = { ...report, serving: { requested, serving: result.serving, fallbackReason: firstReason } };
  if (result.serving && result.fallbackPlan) {
    const version = engineVersion(result.serving, installed);
    const { threads, contextPerSlot, parallelSlots } = result.fallbackPlan;
    report = { ...report, engine: { name: result.serving, version, threads, contextPerSlot, parallelSlots } };
  }
  if (!result.serving) {
    const what = result.attempts.map((a) => `${a.engine}: ${a.ready ? 'ready' : a.reason}`);
    report = { ...report, failure: { what, fix: failureFix(result, inputs) } };
    await writeReport(report, files.reportInputs);
    log.info(`report written to ${paths.reportFile} (with the failure and what to do)`);
    const hint = report.failure!.fix;
    throw new TaskError(`no engine became ready: ${what.join('; ')}`, { exitCode: ExitCode.environment, hint });
  }

  const servingEngine = result.serving;
  const pids = services.unitStatus ? (await services.unitStatus(pending.engineUnit)).pids : [];
  const cpuVariant = await mappedCpuVariant(pids);
  if (cpuVariant) log.info(`${servingEngine} runs the ggml CPU variant ${cpuVariant} (libggml-cpu-${cpuVariant}.so)`);
  report = { ...report, engine: { ...report.engine, cpuVariant } };
  if (pending.letsEncrypt && inputs.config.hostname) {
    report = await letsEncrypt(opts, paths, report, (tls) => render(servingEngine, tls));
  }
  await writeReport(report, files.reportInputs);
  log.info(`report written to ${paths.reportFile}`);
  if (inputs.config.role === 'inference') await services.restart(TEAM_UNIT); // publishes READY, learns the lb
  // /readyz answered 200 (serveAnEngine): publish. OneGate absent or refusing: one line, never a failure
  const published = oneGatePublication(report, opts.env);
  await publishToOneGate(published, { env: opts.env, log, secrets: reportSecrets(report) });
}

/** Let's Encrypt once nginx serves port 80; the gateway is re-rendered (same render step) for the engine serving. */
async function letsEncrypt(
  opts: StageOptions,
  paths: AppliancePaths,
  report: ReportInputs,
  rerender: (tls: ServedCertificate) => Promise<unknown>,
): Promise<ReportInputs> {
  const { log } = opts;
  const result = await log.phase("Let's Encrypt", () =>
    obtainLetsEncrypt(letsEncryptRequest(report.config, paths, { deployHook: 'systemctl reload nginx', log })),
  );
  if (!result.ok) {
    log.warn(`Let's Encrypt failed, the self-signed certificate stays: ${result.reason}`);
    const warning = `Let's Encrypt failed (the self-signed certificate is served): ${result.reason}`;
    return { ...report, warnings: [...report.warnings, warning] };
  }
  await rerender(result.served);
  const tls = {
    mode: 'letsencrypt' as const,
    caCertPath: null,
    caFingerprintSha256: null,
    certFingerprintSha256: result.fingerprint,
    notAfter: result.notAfter.toISOString(),
  };
  return { ...report, tls };
}
