import { readFile } from 'node:fs/promises';
import { appliancePaths, loadContext } from '@slm-copilot/context-schema';
import {
  applyFileSet,
  ExitCode,
  resolveRoot,
  runCommand,
  runSubcommands,
  TaskError,
  usageLine,
} from '@slm-copilot/task-kit';
import { renderBanner } from './banner.js';
import { publishToOneGate } from './onegate.js';
import { renderReport, type ReportInputs } from './report.js';

const TOOL = 'report-writer';

/** A usage error: one line on stderr naming the flag, exit 2 (as for an unknown flag). */
function usage(command: string, message: string): number {
  process.stderr.write(`${usageLine(`${TOOL} ${command}`, new Error(message))}\n`);
  return ExitCode.usage;
}

async function readInputs(file: string): Promise<Omit<ReportInputs, 'paths'>> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Omit<ReportInputs, 'paths'>;
  } catch (error) {
    throw new TaskError(`cannot read the report inputs ${file}: ${(error as Error).message}`, {
      exitCode: ExitCode.environment,
    });
  }
}

const render = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} render`,
      summary: 'write the one-apps report (0600), the client snippets and the login banner',
      usage: `${TOOL} render --inputs report-inputs.json [--root DIR]`,
      options: { inputs: { type: 'string' }, root: { type: 'string' } },
      details:
        'report-inputs.json is a ReportInputs object (see src/report.ts) without `paths`; the lifecycle writes it\n' +
        '(/var/lib/slm-copilot/report-inputs.json).\n\n' +
        'Examples:\n' +
        `  ${TOOL} render --inputs /var/lib/slm-copilot/report-inputs.json\n` +
        `  ${TOOL} render --inputs report-inputs.json --root /tmp/appliance`,
    },
    {
      inputs: 'JSON file with the report inputs',
      root: 'write under this directory as if it were / (default: $SLM_COPILOT_ROOT, else /)',
    },
    argv,
    async ({ values, log }) => {
      if (typeof values.inputs !== 'string') return usage('render', 'missing option --inputs');
      const inputs = { ...(await readInputs(values.inputs)), paths: appliancePaths() };
      log.addSecret(inputs.apiKey);
      const applied = await applyFileSet(resolveRoot(values.root as string | undefined), [
        ...renderReport(inputs),
        ...renderBanner(inputs),
      ]);
      for (const a of applied) log.info(`${a.path}: ${a.result}`);
    },
  );

const onegate = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} onegate`,
      summary: 'publish KEY=VALUE pairs on this VM through OneGate (one line and exit 0 when it is absent or refuses)',
      usage: `${TOOL} onegate --data KEY=VALUE [--data KEY=VALUE]... [--context-file context.sh]`,
      options: { data: { type: 'string', multiple: true }, 'context-file': { type: 'string' } },
      details:
        'OneGate is found through the context: ONEGATE_ENDPOINT, VMID and the VM token (ONEGATE_TOKEN, the\n' +
        "CD's token.txt under MOUNT_DIR, or TOKENTXT in /var/run/one-context/one_env). The pairs are sent as\n" +
        '`onegate vm update --data` sends them (PUT /vm, type 1), without the onegate tool.\n\n' +
        'Examples:\n' +
        `  ${TOOL} onegate --data ONEAPP_COPILOT_ENDPOINT=https://192.0.2.10/v1\n` +
        `  ${TOOL} onegate --data ONEAPP_COPILOT_MODEL_ID=devstral-small-2 ` +
        '--context-file /var/run/one-context/context.sh',
    },
    {
      data: 'a KEY=VALUE pair (repeatable; at least one)',
      'context-file': 'read ONEGATE_ENDPOINT, VMID and the rest of the context from this context.sh (never executed)',
    },
    argv,
    async ({ values, log }) => {
      const data = (values.data as string[] | undefined) ?? [];
      if (data.length === 0) return usage('onegate', 'missing option --data KEY=VALUE');
      const bad = data.find((d) => d.indexOf('=') <= 0);
      if (bad !== undefined) return usage('onegate', `--data ${JSON.stringify(bad)}: expected KEY=VALUE`);
      const pairs = data.map((d) => [d.slice(0, d.indexOf('=')), d.slice(d.indexOf('=') + 1)] as const);
      const env = await loadContext(values['context-file'] as string | undefined, log);
      // one line either way (published, not configured, refused); never a failed command for OneGate's sake
      await publishToOneGate(Object.fromEntries(pairs), { env, log });
    },
  );

export function main(argv: string[]): Promise<number> {
  return runSubcommands(
    TOOL,
    'what SLM-Copilot users read: the report, the login banner, OneGate',
    {
      render: { summary: 'write report, client snippets and banner', run: render },
      onegate: { summary: 'publish values through OneGate', run: onegate },
    },
    argv,
  );
}

process.exitCode = await main(process.argv.slice(2));
