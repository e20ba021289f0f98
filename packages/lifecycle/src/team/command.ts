// `slm-copilot-service team`: the service roles' refresher, run by slm-copilot-team.service (see refresh.ts).
import { appliancePaths, loadContext } from '@slm-copilot/context-schema';
import { ensureLbClientCertificate } from '@slm-copilot/nginx-config';
import { connectOneGate } from '@slm-copilot/onegate';
import { ExitCode, flagSeconds, runCommand, UsageError } from '@slm-copilot/task-kit';
import { systemdControl } from '../services.js';
import { runTeam, TeamRefresher, type TeamDeps } from './refresh.js';
import { productionApply, productionStatus, readConfigured } from './wiring.js';

const NAME = 'slm-copilot-service team';
const DEFAULT_INTERVAL_S = 5;

export const teamCommand = (argv: string[]) =>
  runCommand(
    {
      name: NAME,
      summary:
        "the service roles' refresher: OneGate's GET /service -> the gateway; an inference node's status -> OneGate",
      usage: `${NAME} [--once] [--interval SECONDS] [--context-file one_env] [--root DIR]`,
      options: {
        once: { type: 'boolean', default: false },
        interval: { type: 'string' },
        'context-file': { type: 'string' },
        root: { type: 'string' },
      },
      details:
        'Role lb: renders its upstream from the ready, non-draining nodes of the role "inference" whenever\n' +
        'that set changes (nginx -t, reload, rollback). Role inference: publishes its address, readiness, model,\n' +
        "context, slots and load, and accepts the lb role's client certificates. Stopped (SIGTERM), it drains.\n" +
        'Role standalone: nothing to do (exit 0). OneGate absent or failing: the current gateway keeps serving.\n\n' +
        'Examples:\n' +
        `  ${NAME} --context-file /var/run/one-context/one_env     # as slm-copilot-team.service runs it\n` +
        `  ${NAME} --once --root /tmp/appliance --context-file ctx.sh   # one pass on a test root`,
    },
    {
      once: 'one pass (publish, read /service, apply if changed), then exit',
      interval: `seconds between passes (default ${DEFAULT_INTERVAL_S})`,
      'context-file': "where ONEGATE_ENDPOINT, VMID and the token are (one-context's one_env; read, never executed)",
      root: 'treat this directory as / (tests; default /)',
    },
    argv,
    async ({ values, log }) => {
      const interval = flagSeconds(values.interval, 'interval') ?? DEFAULT_INTERVAL_S;
      if (interval < 1) throw new UsageError(`--interval must be at least 1 second, got "${String(values.interval)}"`);
      const root = typeof values.root === 'string' ? values.root : '';
      const paths = appliancePaths(root);
      const configured = await readConfigured(paths);
      const { role } = configured.config;
      if (role === 'standalone') {
        log.info('role standalone: no service to follow');
        return ExitCode.ok;
      }
      const env = await loadContext(values['context-file'] as string | undefined, log);
      const connected = await connectOneGate({ env, log });
      if (!connected.client) return ExitCode.environment;
      const opts = { prefix: root, env, services: systemdControl(log), log };
      const deps: TeamDeps = {
        role,
        oneGate: connected.client,
        apply: productionApply(configured, paths, opts),
        log,
        ...(role === 'lb'
          ? { lbFingerprint: (await ensureLbClientCertificate(paths, log)).fingerprint }
          : { status: productionStatus(configured, paths) }),
      };
      if (values.once) {
        await new TeamRefresher(deps).tick();
        return ExitCode.ok;
      }
      const abort = new AbortController();
      for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => abort.abort());
      const intervalMs = interval * 1000;
      const drain = {
        boundMs: configured.config.requestTimeoutSeconds * 1000,
        minimumMs: 3 * intervalMs,
        pollMs: 1000,
      };
      log.info(`role ${role}: following service through OneGate every ${interval} s`);
      await runTeam(deps, { intervalMs, signal: abort.signal, drain });
      return ExitCode.ok;
    },
  );
