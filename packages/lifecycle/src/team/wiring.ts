// The team refresher on the appliance: the role's render options (configure and the refresher render the
// gateway the same way), the last applied set kept across runs, and the node's status for OneGate.
import path from 'node:path';
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import {
  ensureLbClientCertificate,
  installGateway,
  renderGateway,
  resolveApiKeys,
  GATEWAY_LOAD_PATH,
  type Backend,
  type GatewayRenderOptions,
} from '@slm-copilot/nginx-config';
import type { ReportInputs } from '@slm-copilot/report-writer';
import { ExitCode, TaskError, type Logger } from '@slm-copilot/task-kit';
import { loopbackGet, readyz } from '../bootstrap.js';
import type { StageOptions } from '../options.js';
import { defaultSite, gatewayInputs } from '../serving.js';
import { readJson, stateFiles, writeJson, type PendingWork } from '../state.js';
import { engineLoad, gatewayLoad, type InferenceStatus } from './load.js';
import type { TeamView } from './refresh.js';

/** What the refresher applied last (configure renders it again instead of an empty set). */
export interface TeamState {
  backends: Backend[];
  lbFingerprints: string[];
}

export const teamStateFile = (paths: AppliancePaths) => path.join(paths.stateDir, 'team.json');

/** The role's part of the gateway render: the lb's upstream and client certificate, the node's lb list. */
export async function teamRenderOptions(
  config: Config,
  paths: AppliancePaths,
  log: Logger,
  view?: TeamView,
): Promise<Partial<GatewayRenderOptions>> {
  if (config.role === 'standalone') return {};
  const saved = (await readJson<TeamState>(teamStateFile(paths))) ?? { backends: [], lbFingerprints: [] };
  if (config.role === 'lb') {
    const cert = await ensureLbClientCertificate(paths, log);
    const backends = view?.role === 'lb' ? view.backends : saved.backends;
    return { team: { backends, clientCertificate: { certificate: cert.certificate, key: cert.key } } };
  }
  const lbFingerprints = view?.role === 'inference' ? view.lbFingerprints : saved.lbFingerprints;
  return { internal: { lbFingerprints } };
}

interface Configured {
  config: Config;
  pending: PendingWork;
}

/** What configure recorded (the refresher renders from it, as bootstrap's fallback does). */
export async function readConfigured(paths: AppliancePaths): Promise<Configured> {
  const files = stateFiles(paths);
  const inputs = await readJson<Omit<ReportInputs, 'paths'>>(files.reportInputs);
  const pending = await readJson<PendingWork>(files.pending);
  if (!inputs || !pending?.render) {
    throw new TaskError('nothing configured yet: run configure first', { exitCode: ExitCode.environment });
  }
  return { config: inputs.config, pending };
}

/** Renders the gateway for a view through the one path (nginx -t, reload, rollback) and keeps the view. */
export function productionApply(c: Configured, paths: AppliancePaths, opts: StageOptions) {
  return async (view: TeamView): Promise<boolean> => {
    const keys = await resolveApiKeys(c.config, paths, { generate: false });
    const inputs = gatewayInputs({ paths, keys, tls: c.pending.render!.tls }, opts);
    const files = renderGateway(c.config, { ...inputs, ...(await teamRenderOptions(c.config, paths, opts.log, view)) });
    const result = await installGateway(files, {
      removeFile: defaultSite(opts.prefix),
      reload: () => opts.services.reload('nginx'),
      testConfigCommand: opts.gateway?.testConfigCommand,
      log: opts.log,
    });
    const saved = (await readJson<TeamState>(teamStateFile(paths))) ?? { backends: [], lbFingerprints: [] };
    await writeJson(
      teamStateFile(paths),
      view.role === 'lb'
        ? { ...saved, backends: view.backends }
        : {
            ...saved,
            lbFingerprints: view.lbFingerprints,
          },
    );
    return result.reloaded;
  };
}

async function getJson(url: string): Promise<unknown> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return r.ok ? r.json() : null;
}

/**
 * The inference node's status: ready = its own gateway's /readyz on loopback; the load from the engine's
 * /slots and /metrics (llama-server), else (LocalAI serves neither) the requests its gateway has in progress.
 */
export function productionStatus(c: Configured, paths: AppliancePaths) {
  const engine = `http://${paths.engine.host}:${paths.engine.port}`;
  const ip = c.pending.render!.host.ipAddresses[0] ?? '127.0.0.1';
  const address = ip.includes(':') ? `[${ip}]:${c.config.httpsPort}` : `${ip}:${c.config.httpsPort}`;
  return async (draining: boolean): Promise<InferenceStatus> => {
    const slots = await getJson(`${engine}/slots`).catch(() => null);
    const metrics = await fetch(`${engine}/metrics`, { signal: AbortSignal.timeout(5000) })
      .then((r) => (r.ok ? r.text() : null))
      .catch(() => null);
    return {
      address,
      ready: (await readyz(c.config.httpsPort)) === 200,
      draining,
      modelId: c.config.modelId,
      contextSize: c.config.contextSize,
      slots: c.config.parallelSlots,
      load:
        engineLoad(slots, metrics) ??
        gatewayLoad((await loopbackGet(c.config.httpsPort, GATEWAY_LOAD_PATH)).body, c.config.parallelSlots),
    };
  };
}
