import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import { loadChatTemplate, modelFactsFromManifest, renderEngine, type EnginePlan } from '@slm-copilot/localai-install';
import type { ModelManifest } from '@slm-copilot/model-fetch';
import {
  installGateway,
  renderGateway,
  resolveApiKeys,
  roleFiles,
  type GatewayRenderOptions,
  type ResolvedKeys,
  type ServedCertificate,
} from '@slm-copilot/nginx-config';
import { applyFileSet, changedPaths, removeFile, underRoot, type HostFacts } from '@slm-copilot/task-kit';
import type { StageOptions } from './options.js';
import { prepareSlotCache } from './prompt-cache/prepare.js';
import type { RenderFacts } from './state.js';
import { teamRenderOptions } from './team/wiring.js';
import { renderTeamUnit, teamUnitPath } from './team/unit.js';

export type EngineName = Config['engine'];

const DEBIAN_DEFAULT_SITE = '/etc/nginx/sites-enabled/default';

/** The plain-HTTP port and listen addresses tests move; the appliance keeps the renderer's defaults. */
export function renderPorts(opts: Pick<StageOptions, 'gateway'>): { httpPort?: number; listenAddresses?: string[] } {
  return {
    ...(opts.gateway?.httpPort ? { httpPort: opts.gateway.httpPort } : {}),
    ...(opts.gateway?.listenAddresses ? { listenAddresses: opts.gateway.listenAddresses } : {}),
  };
}

/** The Debian/Ubuntu default site (its default_server clashes with ours), under the prefix. */
export const defaultSite = (prefix: string) => underRoot(prefix || '/', DEBIAN_DEFAULT_SITE);

export const otherEngine = (engine: EngineName): EngineName => (engine === 'localai' ? 'llama-server' : 'localai');

/** The binary the engine's unit runs. */
export const engineBinary = (engine: EngineName, paths: AppliancePaths): string =>
  engine === 'localai' ? paths.engine.localaiBinary : paths.engine.llamaServerBinary;

export interface ServingInputs {
  config: Config;
  paths: AppliancePaths;
  host: HostFacts;
  manifest: ModelManifest;
  keys: ResolvedKeys;
  tls: ServedCertificate;
}

/**
 * The one builder of the render step's inputs from a Config and what configure decided (host facts,
 * served certificate) — configure and bootstrap (fallback, Let's Encrypt) both build them here, so
 * the same Config renders the same files. `generateKey`: only configure may create the kept API key.
 */
export async function servingInputs(
  config: Config,
  paths: AppliancePaths,
  facts: RenderFacts & { manifest: ModelManifest },
  options: { generateKey?: boolean } = {},
): Promise<ServingInputs & { keys: { generated: boolean } }> {
  const keys = await resolveApiKeys(config, paths, { generate: options.generateKey ?? false });
  return { config, paths, host: facts.host, manifest: facts.manifest, keys, tls: facts.tls };
}

/** What renderGateway gets besides the Config: keys, certificate, paths, and the ports and addresses tests move. */
export function gatewayInputs(
  inputs: Pick<ServingInputs, 'paths' | 'keys' | 'tls'>,
  opts: Pick<StageOptions, 'gateway'>,
): GatewayRenderOptions {
  return { paths: inputs.paths, keys: inputs.keys, tls: inputs.tls, ...renderPorts(opts) };
}

export interface Serving {
  plan: EnginePlan;
  unit: string;
  /** Engine files whose content changed: the engine must be restarted. */
  engineChanged: string[];
}

/**
 * The one render step of configure and of bootstrap's fallback: the engine's files and the gateway
 * (whose /readyz probe differs per engine) for `inputs.config.engine`, installed idempotently —
 * the gateway through `nginx -t` and a reload when nginx runs.
 */
export async function renderServing(inputs: ServingInputs, opts: StageOptions): Promise<Serving> {
  const { config, paths, log } = { ...inputs, log: opts.log };
  const model = modelFactsFromManifest(inputs.manifest);
  const engineInputs = { config, model, host: inputs.host, paths, chatTemplate: await loadChatTemplate() };
  const apiKeys = [inputs.keys.main, ...inputs.keys.extra];
  const slotCacheId = await prepareSlotCache(engineInputs, { modelSha256: inputs.manifest.sha256, apiKeys }, log);
  const engine = renderEngine({ ...engineInputs, slotCacheId });
  for (const w of engine.plan.warnings) log.warn(w.message);
  // roles lb and inference: their gateway part (upstream / accepted lb) and the refresher's unit
  const role = await teamRenderOptions(config, paths, log);
  const gateway = renderGateway(config, { ...gatewayInputs(inputs, opts), ...role });
  const teamUnit = teamUnitPath(paths);
  if (config.role !== 'lb') await removeFile('/', roleFiles(paths).lbMain); // the lb's drain bound
  if (config.role === 'standalone') await removeFile('/', teamUnit);
  else await applyFileSet('/', [{ path: teamUnit, text: renderTeamUnit(config), mode: 0o644 }]);

  const engineChanged = changedPaths(await applyFileSet('/', engine.files));
  for (const file of engine.remove) if (await removeFile('/', file)) engineChanged.push(file);
  const nginxRunning = await opts.services.isActive('nginx');
  await installGateway(gateway, {
    removeFile: defaultSite(opts.prefix),
    directories: [paths.nginx.acmeWebroot, underRoot(opts.prefix || '/', '/var/log/nginx')],
    reload: nginxRunning ? () => opts.services.reload('nginx') : null,
    testConfigCommand: opts.gateway?.testConfigCommand,
    log,
  });
  return { plan: engine.plan, unit: engine.unit, engineChanged };
}
