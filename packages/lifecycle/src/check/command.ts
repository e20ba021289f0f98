// `slm-copilot check`: the appliance's self-check, on the VM or from a workstation.
import { ExitCode, flagSeconds, flagString, runCommand } from '@slm-copilot/task-kit';
import { CHAT_MAX_TOKENS, TOOL_MAX_TOKENS } from './probes.js';
import { formatHeader, formatLine, formatVerdict, runChecks } from './run.js';
import { KEY_ENV, resolveTarget } from './target.js';

const NAME = 'slm-copilot check';
/** Deadline of each generating request (a CPU prefills the tool definitions first). */
const GENERATION_TIMEOUT_S = 120;

const options = {
  url: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string' },
  address: { type: 'string' },
  model: { type: 'string' },
  timeout: { type: 'string' },
  root: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

const optionHelp = {
  url: 'check this gateway, https://HOST:PORT (from a workstation); default: the appliance this runs on',
  key: `API key (or set ${KEY_ENV}; never printed); default on the VM: the report's, else the key file`,
  ca: "CA file to trust (the per-VM CA); default on the VM: its own CA; with --url: the system's roots",
  address: 'connect to this IP instead of resolving the host (the name check still uses the host); VM: 127.0.0.1',
  model: 'model id to ask for; default: the report, else what /readyz names',
  timeout: `seconds each generating request may take (default ${GENERATION_TIMEOUT_S})`,
  root: 'read the appliance files under this directory (tests; default /)',
  json: 'print one JSON document instead of lines',
};

const details = `Checks, one line each: TLS (chain against the CA, the certificate names the host), /readyz, a request
without a key gets 401, a streamed chat (max_tokens ${CHAT_MAX_TOKENS}) returns content and a usage chunk, a tool
call (max_tokens ${TOOL_MAX_TOKENS}; reported, not required), generation and prompt tok/s, the engine serving and any
fallback (on the VM, from the report). Exit 0 only when TLS, readiness, auth and chat pass; 1 otherwise.

Examples:
  sudo slm-copilot check                    # on the VM: reads /etc/one-appliance/config
  sudo slm-copilot check --json
  ${KEY_ENV}=sk-... slm-copilot check --url https://203.0.113.7:443 --ca ~/slm-copilot-ca.crt`;

export const checkCommand = (argv: string[]): Promise<number> =>
  runCommand(
    {
      name: NAME,
      summary: 'check a running appliance as a client would: TLS, readiness, auth, a streamed chat, speed',
      usage: `${NAME} [--url https://HOST:PORT --key KEY --ca FILE] [--address IP] [--json]`,
      options,
      details,
    },
    optionHelp,
    argv,
    async ({ values }) => {
      const timeout = flagSeconds(values.timeout, 'timeout') ?? GENERATION_TIMEOUT_S;
      const target = await resolveTarget({
        url: flagString(values.url),
        key: flagString(values.key),
        ca: flagString(values.ca),
        address: flagString(values.address),
        model: flagString(values.model),
        root: flagString(values.root),
      });
      const json = Boolean(values.json);
      const say = (line: string) => (json ? undefined : process.stdout.write(`${line}\n`));
      say(formatHeader(target));
      const report = await runChecks(target, Math.max(1, timeout) * 1000, (c) => say(formatLine(c)));
      if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else say(formatVerdict(report));
      return report.verdict === 'pass' ? ExitCode.ok : ExitCode.failure;
    },
  );
