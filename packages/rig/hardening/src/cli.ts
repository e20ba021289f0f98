// The hardening suite's commands (the suite itself is `pnpm --filter @slm-copilot/hardening test`):
// the full load run, the full testssl.sh run and the systemd exposure figures.
import { dropLeadingDashes, ExitCode, runCommand, runSubcommands, UsageError } from '@slm-copilot/task-kit';
import { FULL, QUICK, type LoadOptions } from './load-options.js';

const TOOL = 'slm-hardening';
const PNPM = 'pnpm --filter @slm-copilot/hardening';
/** The engine unit's exposure must be at most this (both engines), as the suite asserts. */
const ENGINE_EXPOSURE_MAX = 2.5;

/** A whole number ≥ 0 from a flag, or undefined when the flag is absent. */
function whole(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${flag} needs a whole number, got "${String(v)}"`);
  return n;
}

function loadOptions(values: Record<string, unknown>): LoadOptions {
  const o: LoadOptions = { ...(values.quick ? QUICK : FULL), verbose: !values.quiet };
  o.clients = whole(values.clients, 'clients') ?? o.clients;
  o.durationSeconds = whole(values.duration, 'duration') ?? o.durationSeconds;
  o.parallel = whole(values.parallel, 'parallel') ?? o.parallel;
  o.rateLimitPerMinute = whole(values['rate-limit'], 'rate-limit') ?? o.rateLimitPerMinute;
  o.maxTokens = whole(values['max-tokens'], 'max-tokens') ?? o.maxTokens;
  o.engineExtraArgs = ((values['engine-arg'] as string[] | undefined) ?? []).flatMap((a) => a.split(' '));
  return o;
}

const load = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} load`,
      summary: 'N concurrent streaming clients through nginx (TLS) to llama-server with fewer slots than clients',
      usage:
        `${TOOL} load [--quick] [--clients N] [--duration S] [--parallel N] [--rate-limit N] [--max-tokens N] ` +
        '[--engine-arg="FLAG [VALUE]"]... [--json]',
      options: {
        quick: { type: 'boolean', default: false },
        clients: { type: 'string' },
        duration: { type: 'string' },
        parallel: { type: 'string' },
        'rate-limit': { type: 'string' },
        'max-tokens': { type: 'string' },
        'engine-arg': { type: 'string', multiple: true },
        json: { type: 'boolean', default: false },
      },
      details:
        "The engine is llama-server on the tiny test GGUF with the appliance's own command line from\n" +
        'localai-install (plus any --engine-arg). Fails (exit 1) on a truncated stream, a response other than\n' +
        '[DONE]/JSON 429/503, a rate limit that does not hold, or resident memory growing >= 10 % from the\n' +
        'first to the last minute (runs of 2 minutes or more).\n' +
        `Defaults: ${FULL.clients} clients, ${FULL.durationSeconds} s, --parallel ${FULL.parallel}, ` +
        `${FULL.rateLimitPerMinute}/min. --quick (what the test runs): ${QUICK.clients} clients, ` +
        `${QUICK.durationSeconds} s.\n` +
        '\nExamples:\n' +
        `  ${PNPM} load\n` +
        `  ${PNPM} load -- --quick --json\n` +
        `  ${PNPM} load -- --clients 16 --duration 120 --engine-arg="--cache-ram 0"`,
    },
    {
      quick: `${QUICK.clients} clients for ${QUICK.durationSeconds} s`,
      clients: `concurrent streaming clients (default ${FULL.clients})`,
      duration: `seconds (default ${FULL.durationSeconds})`,
      parallel: `llama-server slots (default ${FULL.parallel})`,
      'rate-limit': `ONEAPP_COPILOT_RATE_LIMIT, requests per minute (default ${FULL.rateLimitPerMinute})`,
      'max-tokens': `max_tokens of each request (default ${FULL.maxTokens})`,
      'engine-arg': 'a flag (and value) added to the engine command line, written --engine-arg=…; repeatable',
      json: 'print the full report as JSON instead of the summary',
    },
    argv,
    async ({ values }) => {
      const opts = loadOptions(values);
      // The work is imported once the command has decided to run (help and usage errors load nothing).
      const { runLoad, summary } = await import('./load.js');
      const { removeTempRoots } = await import('@slm-copilot/nginx-config/test-support/nginx');
      try {
        const r = await runLoad(opts);
        process.stdout.write(values.json ? `${JSON.stringify(r, null, 2)}\n` : `${summary(r)}\n`);
        return r.problems.length ? ExitCode.failure : ExitCode.ok;
      } finally {
        removeTempRoots();
      }
    },
  );

const testsslFull = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} testssl-full`,
      summary: 'every testssl.sh check against the gateway on the real nginx',
      usage: `${TOOL} testssl-full [--json]`,
      options: { json: { type: 'boolean', default: false } },
      details:
        'Target: the SAN host name at 127.0.0.1, the per-VM CA added. Exit 1 on a protocol other than\n' +
        'TLS 1.2/1.3 or a HIGH/CRITICAL finding outside testssl-allowlist.json.\n' +
        '\nExamples:\n' +
        `  ${PNPM} testssl:full\n` +
        `  ${PNPM} testssl:full -- --json`,
    },
    { json: 'print the findings as JSON instead of the summary' },
    argv,
    async ({ values, log }) => {
      const { runTestsslFull, testsslFullJson, testsslFullSummary } = await import('./testssl-full.js');
      const { removeTempRoots } = await import('@slm-copilot/nginx-config/test-support/nginx');
      try {
        const r = await runTestsslFull((m) => log.info(m));
        process.stdout.write(`${values.json ? testsslFullJson(r) : testsslFullSummary(r)}\n`);
        return r.problems.length ? ExitCode.failure : ExitCode.ok;
      } finally {
        removeTempRoots();
      }
    },
  );

const systemdSecurity = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} systemd-security`,
      summary: 'systemd-analyze security --offline=yes on the engine unit and on nginx.service with the drop-in',
      usage: `${TOOL} systemd-security [--json]`,
      options: { json: { type: 'boolean', default: false } },
      details:
        'The engine unit as localai-install renders it (LocalAI and llama-server), and nginx.service (the\n' +
        "host's Debian unit, else a copy of Debian 12's) without and with the gateway's drop-in, each open\n" +
        `item with the reason it stays open. Exit 1 when the engine is above ${ENGINE_EXPOSURE_MAX}.\n` +
        '\nExamples:\n' +
        `  ${PNPM} systemd-security\n` +
        `  ${PNPM} systemd-security -- --json`,
    },
    { json: 'print the reports as JSON' },
    argv,
    async ({ values }) => {
      const { allSecurityReports, formatAll } = await import('./systemd-security.js');
      const r = await allSecurityReports();
      process.stdout.write(values.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatAll(r)}\n`);
      const ok = r.localai.exposure <= ENGINE_EXPOSURE_MAX && r.llama.exposure <= ENGINE_EXPOSURE_MAX;
      return ok ? ExitCode.ok : ExitCode.failure;
    },
  );

export function main(argv: string[]): Promise<number> {
  return runSubcommands(
    TOOL,
    'the hardening suite of SLM-Copilot: the runs too long for `test`, and the systemd exposure figures',
    {
      load: { summary: 'the full load run (the suite runs --quick)', run: load },
      'testssl-full': { summary: 'every testssl.sh check against the gateway', run: testsslFull },
      'systemd-security': {
        summary: 'exposure of the engine unit and of nginx with the drop-in',
        run: systemdSecurity,
      },
    },
    dropLeadingDashes(argv),
  );
}

process.exit(await main(process.argv.slice(2)));
