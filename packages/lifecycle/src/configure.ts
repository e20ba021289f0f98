import path from 'node:path';
import {
  ContextError,
  parseContext,
  VARIABLE_PREFIX,
  type AppliancePaths,
  type Config,
} from '@slm-copilot/context-schema';
import { readManifest, verifySampled } from '@slm-copilot/model-fetch';
import { installGateway, prepareTls, renderUnconfigured } from '@slm-copilot/nginx-config';
import { renderBanner, renderRefusedReport, renderReport, type ReportInputs } from '@slm-copilot/report-writer';
import { applyFileSet, ExitCode, gatherHostFacts, TaskError, underRoot, type HostFacts } from '@slm-copilot/task-kit';
import { stagePaths, type StageOptions } from './options.js';
import { defaultSite, renderPorts, renderServing, servingInputs } from './serving.js';
import { readJson, requireInstalled, stateFiles, writeJson, type InstalledImage, type PendingWork } from './state.js';

export type { StageOptions } from './options.js';

function contextOnly(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[0].startsWith(VARIABLE_PREFIX) && e[1] !== undefined),
  );
}

/**
 * The HTTPS port to answer on when the context was refused: the given one if the schema accepts it,
 * else the schema's default.
 */
function httpsPortOf(env: Record<string, string | undefined>): number {
  try {
    return parseContext({ ONEAPP_COPILOT_HTTPS_PORT: env.ONEAPP_COPILOT_HTTPS_PORT }).httpsPort;
  } catch (error) {
    if (error instanceof ContextError) return parseContext({}).httpsPort;
    throw error;
  }
}

/** Where clients reach the appliance: its DNS name, else its first address. */
export function publicHost(config: Config, host: HostFacts): string {
  return config.hostname ?? host.ipAddresses[0] ?? host.hostname;
}

/**
 * configure (every boot): parse the context once, check the model and the machine, render every
 * file and install them idempotently. A refused context changes nothing that serves: the error goes
 * to the log, the report and the banner, and the last good configuration keeps running.
 */
export async function configure(opts: StageOptions): Promise<void> {
  const { log } = opts;
  const paths = stagePaths(opts);
  const files = stateFiles(paths);
  // first: on a root the install stage never built, nothing is written
  const installed = await requireInstalled(paths);
  const host = await (opts.hostFacts ?? gatherHostFacts)();

  let config: Config;
  try {
    config = parseContext(opts.env);
  } catch (error) {
    if (error instanceof ContextError) await reportRefusedContext(error, paths, host, opts);
    throw error;
  }

  const modelPath = path.join(paths.modelsDir, installed.model.file);
  const manifest = await readManifest(modelPath);
  if (!manifest)
    throw new TaskError(`no manifest for ${modelPath}`, {
      exitCode: ExitCode.integrity,
      hint: `model-fetch inspect ${modelPath} --write`,
    });
  const check = await log.phase('check the model file (size, GGUF header, sampled hash)', () =>
    verifySampled(modelPath, manifest),
  );
  if (!check.ok) {
    throw new TaskError(`the model file ${modelPath} is damaged: ${check.reason}`, {
      exitCode: ExitCode.integrity,
      hint: `model-fetch verify ${modelPath} --full; re-fetch it with model-fetch or redeploy the image`,
    });
  }

  const tls = await log.phase('TLS certificate', () =>
    prepareTls(config, { paths, ipAddresses: host.ipAddresses, log }),
  );
  const serving = await servingInputs(config, paths, { host, tls: tls.served, manifest }, { generateKey: true });
  const { keys } = serving;
  log.addSecret(keys.main);
  for (const k of keys.extra) log.addSecret(k);
  if (keys.generated) log.info(`generated an API key (kept in ${paths.apiKeyFile})`);
  const engine = await renderServing(serving, opts);
  const engineChanged = engine.engineChanged;

  const warnings = [
    ...engine.plan.warnings.map((w) => w.message),
    ...(tls.letsEncryptReason && !tls.letsEncryptPending ? [tls.letsEncryptReason] : []),
  ];
  const previous = await readJson<PendingWork>(files.pending);
  const reportInputs: Omit<ReportInputs, 'paths'> = {
    config,
    apiKey: keys.main,
    generatedKeyFile: config.apiKey ? null : paths.apiKeyFile,
    host: publicHost(config, host),
    engine: {
      name: config.engine,
      version: engineVersion(config.engine, installed),
      threads: engine.plan.threads,
      contextPerSlot: engine.plan.contextPerSlot,
      parallelSlots: engine.plan.parallelSlots,
    },
    tls: {
      mode: tls.kind,
      caCertPath: tls.kind === 'self-signed' ? paths.tls.caCert : null,
      caFingerprintSha256: tls.selfSigned?.caFingerprint ?? null,
      certFingerprintSha256: tls.fingerprint,
      notAfter: (tls.selfSigned?.leafNotAfter ?? new Date(0)).toISOString(),
    },
    warnings,
    errors: [],
    generatedAt: (opts.now?.() ?? new Date()).toISOString(),
  };
  await writeJson(files.reportInputs, reportInputs);
  const pending: PendingWork = {
    // a restart still owed by a bootstrap that did not finish is kept
    restartEngine: engineChanged.length > 0 || (previous?.restartEngine ?? false),
    engineUnit: engine.unit,
    letsEncrypt: tls.letsEncryptPending,
    warnings,
    reportInputsFile: files.reportInputs,
    render: { host, tls: tls.served },
  };
  await writeJson(files.pending, pending);
  await writeJson(files.lastGoodContext, contextOnly(opts.env));
  log.info(
    `configured: engine ${config.engine}, ${engineChanged.length} engine file(s) changed, ` +
      `context ${engine.plan.contextPerSlot} × ${engine.plan.parallelSlots}`,
  );
}

/** What the report names as the engine's version (a stand-in says so). */
export function engineVersion(engine: Config['engine'], installed: InstalledImage): string {
  if (engine === 'llama-server') return 'llama.cpp llama-server';
  if (installed.localai?.standIn) return 'LocalAI STAND-IN (test image; cannot serve)';
  return `LocalAI ${installed.localai?.version ?? '(not installed)'}`;
}

/**
 * A refused context: say so everywhere the operator looks; serve the last good configuration (or a
 * 503 that names the problem).
 */
async function reportRefusedContext(
  error: ContextError,
  paths: AppliancePaths,
  host: HostFacts,
  opts: StageOptions,
): Promise<void> {
  const files = stateFiles(paths);
  const errors = error.problems.map((p) => `${p.variable} = ${p.shown}: expected ${p.expected}`);
  const previous = await readJson<Omit<ReportInputs, 'paths'>>(files.reportInputs);
  if (previous) {
    const inputs: ReportInputs = {
      ...previous,
      paths,
      errors,
      generatedAt: (opts.now?.() ?? new Date()).toISOString(),
    };
    await applyFileSet('/', [...renderReport(inputs), ...renderBanner(inputs)]);
    opts.log.error('the context was refused; the previous good configuration keeps serving');
    return;
  }
  // First boot and nothing good yet: nginx answers every path with a 503 naming the problem, and never proxies.
  const tls = await prepareTls(parseContext({}), { paths, ipAddresses: host.ipAddresses, log: opts.log });
  const nginxRunning = await opts.services.isActive('nginx');
  await installGateway(
    renderUnconfigured(errors.join('; '), {
      paths,
      tls: tls.served,
      httpsPort: httpsPortOf(opts.env),
      ...renderPorts(opts),
    }),
    {
      removeFile: defaultSite(opts.prefix),
      directories: [underRoot(opts.prefix || '/', '/var/log/nginx')],
      testConfigCommand: opts.gateway?.testConfigCommand,
      reload: nginxRunning ? () => opts.services.reload('nginx') : null,
      log: opts.log,
    },
  );
  if (!nginxRunning) await opts.services.ensureStarted('nginx');
  const banner = renderBanner({
    host: host.ipAddresses[0] ?? host.hostname,
    config: parseContext({}),
    paths,
    warnings: [],
    errors,
    engine: { name: 'none', version: '-', threads: 0, contextPerSlot: 0, parallelSlots: 0 },
    tls: {
      mode: 'self-signed',
      caCertPath: paths.tls.caCert,
      caFingerprintSha256: null,
      certFingerprintSha256: tls.fingerprint,
      notAfter: '',
    },
  });
  await applyFileSet('/', [...banner, renderRefusedReport(paths, errors, (opts.now?.() ?? new Date()).toISOString())]);
  opts.log.error('the context was refused on first boot: nginx answers 503 naming the problem until it is fixed');
}
