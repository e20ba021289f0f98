import { readFile } from 'node:fs/promises';
import { appliancePaths } from '@slm-copilot/context-schema';
import { applyFileSet, ExitCode, resolveRoot, runCommand, runSubcommands, TaskError } from '@slm-copilot/task-kit';
import { renderBanner } from './banner.js';
import { publishToOneGate } from './onegate.js';
import { renderReport, type ReportInputs } from './report.js';

const TOOL = 'report-writer';

const render = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} render`,
      summary: 'write the one-apps report (0600), the client snippets and the login banner',
      usage: `${TOOL} render --inputs report-inputs.json [--root DIR]`,
      options: { inputs: { type: 'string' }, root: { type: 'string' } },
      details:
        'report-inputs.json is a ReportInputs object (see src/report.ts) without `paths`; the lifecycle writes it.',
    },
    { inputs: 'JSON file with the report inputs', root: 'write under this prefix as if it were /' },
    argv,
    async ({ values, log }) => {
      if (typeof values.inputs !== 'string') throw new TaskError('--inputs is required', { exitCode: ExitCode.usage });
      const inputs = {
        ...(JSON.parse(await readFile(values.inputs, 'utf8')) as Omit<ReportInputs, 'paths'>),
        paths: appliancePaths(),
      };
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
      summary: 'publish KEY=VALUE pairs on this VM through OneGate (skipped quietly when OneGate is absent)',
      usage: `${TOOL} onegate --data KEY=VALUE [--data KEY=VALUE]...`,
      options: { data: { type: 'string', multiple: true } },
    },
    { data: 'a KEY=VALUE pair (repeatable)' },
    argv,
    async ({ values, log }) => {
      const pairs = ((values.data as string[] | undefined) ?? []).map((d) => {
        const i = d.indexOf('=');
        if (i <= 0)
          throw new TaskError(`--data ${JSON.stringify(d)}: expected KEY=VALUE`, { exitCode: ExitCode.usage });
        return [d.slice(0, i), d.slice(i + 1)] as const;
      });
      const result = await publishToOneGate(Object.fromEntries(pairs), { log });
      if (!result.published) log.info(`not published: ${result.reason}`);
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
