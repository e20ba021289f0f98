import { Agent, request } from 'node:https';
import { appliancePaths } from '@slm-copilot/context-schema';
import { certbotDirs, installGateway, obtainLetsEncrypt, renderGateway, resolveApiKeys } from '@slm-copilot/nginx-config';
import { endpointOf, publishToOneGate, renderBanner, renderReport, type ReportInputs } from '@slm-copilot/report-writer';
import { applyFileSet, ExitCode, formatDuration, TaskError } from '@slm-copilot/task-kit';
import type { StageOptions } from './configure.js';
import { readJson, stateFiles, writeJson, type PendingWork } from './state.js';

/** How long bootstrap waits for the model to load (a 14 GB GGUF from a cold disk takes minutes). */
export const READY_TIMEOUT_MS = 20 * 60_000;

/** GET https://127.0.0.1:<port>/readyz, trusting whatever certificate (it is our own nginx on loopback, no key is sent). */
function readyz(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/readyz', method: 'GET', agent: new Agent({ rejectUnauthorized: false }), timeout: 10_000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export async function waitUntilReady(port: number, timeoutMs: number, log: StageOptions['log']): Promise<number> {
  const started = performance.now();
  let last = 0;
  while (performance.now() - started < timeoutMs) {
    last = await readyz(port);
    if (last === 200) {
      const took = performance.now() - started;
      log.info(`the model answers: /readyz 200 after ${formatDuration(took)}`);
      return took;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new TaskError(`the engine did not become ready within ${formatDuration(timeoutMs)} (last /readyz status ${last})`, {
    exitCode: ExitCode.environment,
    hint: 'journalctl -u slm-copilot-engine; check RAM and the CPU model (host-passthrough)',
  });
}

/**
 * bootstrap (every boot, after configure): start or restart only what changed, wait until the
 * model really answers, get a Let's Encrypt certificate if asked, then write the report and
 * publish the endpoint.
 */
export async function bootstrap(opts: StageOptions & { readyTimeoutMs?: number }): Promise<void> {
  const { log, services } = opts;
  const paths = appliancePaths(opts.prefix);
  const files = stateFiles(paths);
  const pending = await readJson<PendingWork>(files.pending);
  const inputs = await readJson<Omit<ReportInputs, 'paths'>>(files.reportInputs);
  if (!pending || !inputs) throw new TaskError('nothing configured yet: run configure first', { exitCode: ExitCode.usage });

  await services.daemonReload();
  if (pending.restartEngine) await services.restart(pending.engineUnit);
  else await services.ensureStarted(pending.engineUnit);
  await services.ensureStarted('nginx');
  await writeJson(files.pending, { ...pending, restartEngine: false });

  await log.phase('wait for the model', () => waitUntilReady(inputs.config.httpsPort, opts.readyTimeoutMs ?? READY_TIMEOUT_MS, log));

  let report: ReportInputs = { ...inputs, paths };
  if (pending.letsEncrypt && inputs.config.hostname) {
    const result = await log.phase("Let's Encrypt", () =>
      obtainLetsEncrypt({
        hostname: inputs.config.hostname!,
        email: inputs.config.tls.letsEncryptEmail,
        acmeDirectory: inputs.config.tls.acmeDirectory,
        webroot: paths.nginx.acmeWebroot,
        dirs: certbotDirs(paths),
        deployHook: 'systemctl reload nginx',
        log,
      }),
    );
    if (result.ok) {
      const keys = await resolveApiKeys(inputs.config, paths);
      await installGateway(renderGateway(inputs.config, { paths, keys, tls: result.served }), { reload: () => services.reload('nginx'), log });
      report = { ...report, tls: { mode: 'letsencrypt', caCertPath: null, caFingerprintSha256: null, certFingerprintSha256: result.fingerprint, notAfter: result.notAfter.toISOString() } };
    } else {
      log.warn(`Let's Encrypt failed, the self-signed certificate stays: ${result.reason}`);
      report = { ...report, warnings: [...report.warnings, `Let's Encrypt failed (the self-signed certificate is served): ${result.reason}`] };
    }
  }

  await applyFileSet('/', [...renderReport(report), ...renderBanner(report)]);
  log.info(`report written to ${paths.reportFile}`);
  await publishToOneGate({ ONEAPP_COPILOT_ENDPOINT: `${endpointOf(report)}/v1`, ONEAPP_COPILOT_MODEL_ID: report.config.modelId }, { env: opts.env, log });
}
