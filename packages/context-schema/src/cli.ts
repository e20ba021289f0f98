import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, runCommand, runSubcommands, writeFileAtomic } from '@slm-copilot/task-kit';
import { renderDocsTable, renderMarketplaceInputs, renderServiceParams } from './generate.js';
import { expectedGeneratedFiles } from './generated-files.js';
import { loadContext } from './load-context.js';
import { parseContext, redactConfig } from './parse.js';

const TOOL = 'context-schema';

const validate = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} validate`,
      summary: 'check ONEAPP_* values and print the resulting configuration (secrets masked)',
      usage: `${TOOL} validate [--context-file context.sh] [--json]`,
      options: { 'context-file': { type: 'string', short: 'f' }, json: { type: 'boolean', default: false } },
      details:
        'Without --context-file, the ONEAPP_* variables of the environment are checked ' +
        '(as one-context exports them).\n' +
        'The file is read, never executed. Exit code 3 when a value is refused; every refused variable is listed.\n' +
        '\nExamples:\n' +
        `  ${TOOL} validate --context-file /var/run/one-context/context.sh\n` +
        `  ONEAPP_COPILOT_THREADS=4 ${TOOL} validate --json`,
    },
    {
      'context-file': 'an OpenNebula context.sh to read (never executed) instead of the environment',
      json: 'print the configuration as JSON only',
    },
    argv,
    async ({ values, log }) => {
      const env = await loadContext(values['context-file'] as string | undefined, log);
      const config = parseContext(env);
      process.stdout.write(`${JSON.stringify(redactConfig(config), null, 2)}\n`);
      if (!values.json) log.info('context is valid');
    },
  );

const printer = (name: string, summary: string, render: () => string) => (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} ${name}`,
      summary,
      usage: `${TOOL} ${name}`,
      options: {},
      details: `Examples:\n  ${TOOL} ${name}`,
    },
    {},
    argv,
    async () => {
      process.stdout.write(render());
    },
  );

const generate = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} generate`,
      summary: 'rewrite the committed files generated from the schema (README table, params block, marketplace inputs)',
      usage: `${TOOL} generate [--repo DIR] [--check]`,
      options: { repo: { type: 'string' }, check: { type: 'boolean', default: false } },
      details:
        'Examples:\n' +
        `  ${TOOL} generate --repo .           # after editing schema/context.schema.json\n` +
        `  ${TOOL} generate --repo . --check   # exit 1 when a committed file is stale`,
    },
    { repo: 'repository root (default: the current directory)', check: 'only report files that differ; exit 1 if any' },
    argv,
    async ({ values, log }) => {
      const repo = path.resolve(typeof values.repo === 'string' ? values.repo : '.');
      let stale = 0;
      for (const f of await expectedGeneratedFiles(repo)) {
        const current = await readFile(f.path, 'utf8').catch(() => '');
        if (current === f.text) continue;
        stale++;
        if (values.check) log.error(`${path.relative(repo, f.path)} is out of date`);
        else log.info(`${path.relative(repo, f.path)}: ${await writeFileAtomic(f.path, f.text)}`);
      }
      return values.check && stale > 0 ? ExitCode.failure : ExitCode.ok;
    },
  );

export function main(argv: string[]): Promise<number> {
  return runSubcommands(
    TOOL,
    'the ONEAPP_* context contract of SLM-Copilot',
    {
      validate: { summary: 'check a context and print the configuration', run: validate },
      docs: {
        summary: 'print the Markdown table of variables',
        run: printer('docs', 'print the Markdown table of variables', renderDocsTable),
      },
      params: {
        summary: 'print the one-apps ONE_SERVICE_PARAMS block',
        run: printer('params', 'print the one-apps ONE_SERVICE_PARAMS block', renderServiceParams),
      },
      marketplace: {
        summary: 'print the marketplace user_inputs, inputs_order and context',
        run: printer(
          'marketplace',
          'print the marketplace user_inputs, inputs_order and context',
          renderMarketplaceInputs,
        ),
      },
      generate: { summary: 'rewrite (or --check) the committed generated files', run: generate },
    },
    argv,
  );
}

process.exitCode = await main(process.argv.slice(2));
