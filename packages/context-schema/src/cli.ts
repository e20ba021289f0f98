import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, runCommand, runSubcommands, TaskError, writeFileAtomic } from '@slm-copilot/task-kit';
import { parseContextFile } from './context-file.js';
import { renderDocsTable, renderMarketplaceInputs, renderServiceParams } from './generate.js';
import { expectedGeneratedFiles } from './generated-files.js';
import { parseContext, redactConfig } from './parse.js';

const TOOL = 'context-schema';

async function readContextFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new TaskError(`cannot read context file ${file}: ${(error as Error).message}`, {
      exitCode: ExitCode.environment,
    });
  }
}

const validate = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} validate`,
      summary: 'check ONEAPP_* values and print the resulting configuration (secrets masked)',
      usage: `${TOOL} validate [--file context.sh]`,
      options: { file: { type: 'string', short: 'f' }, json: { type: 'boolean', default: false } },
      details:
        'Without --file, the ONEAPP_* variables of the environment are checked (as one-context exports them).\n' +
        'The file is read, never executed. Exit code 3 when a value is refused; every refused variable is listed.\n' +
        `Example: ${TOOL} validate --file /var/run/one-context/context.sh`,
    },
    {
      file: 'an OpenNebula context.sh to read instead of the environment',
      json: 'print the configuration as JSON only',
    },
    argv,
    async ({ values, log }) => {
      let env: Record<string, string | undefined> = process.env;
      if (typeof values.file === 'string') {
        const parsed = parseContextFile(await readContextFile(values.file));
        for (const w of parsed.warnings) log.warn(`${values.file}: ${w}`);
        env = parsed.values;
      }
      const config = parseContext(env);
      process.stdout.write(`${JSON.stringify(redactConfig(config), null, 2)}\n`);
      if (!values.json) log.info('context is valid');
    },
  );

const printer = (name: string, summary: string, render: () => string) => (argv: string[]) =>
  runCommand({ name: `${TOOL} ${name}`, summary, usage: `${TOOL} ${name}`, options: {} }, {}, argv, async () => {
    process.stdout.write(render());
  });

const generate = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} generate`,
      summary: 'rewrite the committed files generated from the schema (README table, params block, marketplace inputs)',
      usage: `${TOOL} generate [--repo DIR] [--check]`,
      options: { repo: { type: 'string' }, check: { type: 'boolean', default: false } },
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
