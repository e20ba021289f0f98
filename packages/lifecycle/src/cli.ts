import { readFile } from 'node:fs/promises';
import { ExitCode, runCommand, runSubcommands, TaskError, type Logger } from '@slm-copilot/task-kit';
import { bootstrap } from './bootstrap.js';
import { configure } from './configure.js';
import { loadContext } from './context.js';
import { install, type BuildPlan } from './install.js';
import { runStage, type Stage } from './runner.js';
import { systemdControl } from './services.js';

const TOOL = 'slm-copilot-service';

const stageOptions = {
  'context-file': { type: 'string' },
  prefix: { type: 'string' },
  'no-runner': { type: 'boolean', default: false },
} as const;
const stageHelp = {
  'context-file':
    'read ONEAPP_* from this context.sh (read, never executed) instead of the environment (one-context exports them)',
  prefix: 'treat this directory as / (tests)',
  'no-runner': 'run the stage bare: the upstream one-apps framework already keeps the status, logs and lock',
};

/** Runs a stage under our own one-apps-compatible runner unless the framework is doing that. */
async function stage(
  name: Stage,
  values: Record<string, unknown>,
  fn: (log: Logger) => Promise<void>,
  log: Logger,
): Promise<number> {
  const prefix = typeof values.prefix === 'string' ? values.prefix : '';
  if (values['no-runner']) {
    await fn(log);
    return ExitCode.ok;
  }
  return runStage(name, prefix || '/', fn);
}

const stageCommand = (name: 'configure' | 'bootstrap', summary: string) => (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} ${name}`,
      summary,
      usage: `${TOOL} ${name} [--context-file context.sh] [--no-runner]`,
      options: stageOptions,
    },
    stageHelp,
    argv,
    async ({ values, log }) =>
      stage(
        name,
        values,
        async (stageLog) => {
          const opts = {
            prefix: typeof values.prefix === 'string' ? values.prefix : '',
            env: await loadContext(values['context-file'] as string | undefined, stageLog),
            services: systemdControl(stageLog),
            log: stageLog,
          };
          await (name === 'configure' ? configure(opts) : bootstrap(opts));
        },
        log,
      ),
  );

const installCommand = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} install`,
      summary: 'build-time stage: packages, engine, model (from the build plan); nothing per-VM',
      usage: `${TOOL} install --plan build-plan.json [--no-runner]`,
      options: {
        plan: { type: 'string' },
        prefix: { type: 'string' },
        'no-runner': { type: 'boolean', default: false },
      },
    },
    {
      plan: 'the build plan written by the image build (profile, mirrors, model, engines)',
      prefix: stageHelp.prefix,
      'no-runner': stageHelp['no-runner'],
    },
    argv,
    async ({ values, log }) => {
      if (typeof values.plan !== 'string') throw new TaskError('--plan is required', { exitCode: ExitCode.usage });
      const plan = JSON.parse(await readFile(values.plan, 'utf8')) as BuildPlan;
      return stage(
        'install',
        values,
        async (stageLog) =>
          void (await install(plan, { prefix: typeof values.prefix === 'string' ? values.prefix : '', log: stageLog })),
        log,
      );
    },
  );

export function main(argv: string[]): Promise<number> {
  return runSubcommands(
    TOOL,
    'the SLM-Copilot appliance lifecycle (one-apps stages: install at build time; configure and bootstrap on every boot)',
    {
      install: { summary: 'build-time install from a build plan', run: installCommand },
      configure: {
        summary: 'parse the context and render every file (idempotent)',
        run: stageCommand('configure', 'parse the context, check model and machine, render and install every file'),
      },
      bootstrap: {
        summary: "start what changed, wait for the model, Let's Encrypt, report",
        run: stageCommand(
          'bootstrap',
          "start or restart what changed, wait until the model answers, Let's Encrypt, write the report",
        ),
      },
    },
    argv,
  );
}

process.exitCode = await main(process.argv.slice(2));
