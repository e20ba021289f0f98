import { readFile } from 'node:fs/promises';
import { appliancePaths, loadContext } from '@slm-copilot/context-schema';
import { ExitCode, runCommand, runSubcommands, TaskError, usageLine, type Logger } from '@slm-copilot/task-kit';
import { bootstrap } from './bootstrap.js';
import { checkCommand } from './check/command.js';
import { cacheCommand } from './prompt-cache/command.js';
import { configure } from './configure.js';
import { install, type BuildPlan } from './install.js';
import { applyContext, contextStageRunner } from './reconfigure.js';
import { runStage, type Stage } from './runner.js';
import { systemdControl } from './services.js';
import { teamCommand } from './team/command.js';
import { requireInstalled } from './state.js';

const TOOL = 'slm-copilot-service';

const stageOptions = {
  'context-file': { type: 'string' },
  root: { type: 'string' },
  'no-runner': { type: 'boolean', default: false },
} as const;
const stageHelp = {
  'context-file':
    'read ONEAPP_* from this context.sh (read, never executed) instead of the environment (one-context exports them)',
  root: 'treat this directory as / (tests; default /)',
  'no-runner': 'run the stage bare: the upstream one-apps framework already keeps the status, logs and lock',
};

const rootOf = (values: Record<string, unknown>): string => (typeof values.root === 'string' ? values.root : '');

/** Runs a stage under our own one-apps-compatible runner unless the framework is doing that. */
async function stage(
  name: Stage,
  values: Record<string, unknown>,
  fn: (log: Logger) => Promise<void>,
  log: Logger,
): Promise<number> {
  if (values['no-runner']) {
    await fn(log);
    return ExitCode.ok;
  }
  return runStage(name, rootOf(values) || '/', fn);
}

const stageExamples = (name: string) =>
  'Examples:\n' +
  `  ${TOOL} ${name} --no-runner                      # as appliance.sh runs it under one-apps\n` +
  `  ${TOOL} ${name} --context-file /var/run/one-context/context.sh\n` +
  `  ${TOOL} ${name} --root /tmp/appliance --context-file ctx.sh   # a test root`;

const stageCommand = (name: 'configure' | 'bootstrap', summary: string) => (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} ${name}`,
      summary,
      usage: `${TOOL} ${name} [--context-file context.sh] [--root DIR] [--no-runner]`,
      options: stageOptions,
      details:
        'Refuses, writing nothing (no status file, no motd, no log), when the root holds no installed appliance.\n\n' +
        stageExamples(name),
    },
    stageHelp,
    argv,
    async ({ values, log }) => {
      // decide before the runner writes its status file, log and motd
      await requireInstalled(appliancePaths(rootOf(values)));
      return stage(
        name,
        values,
        async (stageLog) => {
          const opts = {
            prefix: rootOf(values),
            env: await loadContext(values['context-file'] as string | undefined, stageLog),
            services: systemdControl(stageLog),
            log: stageLog,
          };
          await (name === 'configure' ? configure(opts) : bootstrap(opts));
        },
        log,
      );
    },
  );

const reconfigureCommand = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} reconfigure`,
      summary:
        'apply a context.sh as a boot does (configure, then bootstrap if configure succeeded), one run at a time',
      usage: `${TOOL} reconfigure --context-file context.sh [--if-changed] [--root DIR]`,
      options: {
        'context-file': { type: 'string' },
        'if-changed': { type: 'boolean', default: false },
        root: { type: 'string' },
      },
      details:
        'Without one-context: the boot unit runs it with the CONTEXT CD, and a CD swapped on the running VM\n' +
        '(udev, slm-copilot-reconfigure.service) runs it with --if-changed. Each stage keeps its status, log and\n' +
        'motd; a refused context is named in the report and the last good configuration keeps serving.\n\n' +
        'Examples:\n' +
        `  ${TOOL} reconfigure --context-file /run/slm-copilot/context-changed.sh --if-changed   # a CD change\n` +
        `  ${TOOL} reconfigure --root /tmp/appliance --context-file ctx.sh   # a test root`,
    },
    {
      'context-file': 'the context.sh to apply (read, never executed)',
      'if-changed': 'do nothing when it is the context last applied (since boot)',
      root: stageHelp.root,
    },
    argv,
    async ({ values, log }) => {
      const contextFile = values['context-file'];
      if (typeof contextFile !== 'string') {
        process.stderr.write(`${usageLine(`${TOOL} reconfigure`, new Error('missing option --context-file'))}\n`);
        return ExitCode.usage;
      }
      const root = rootOf(values);
      await requireInstalled(appliancePaths(root));
      const result = await applyContext({
        root,
        contextFile,
        ifChanged: values['if-changed'] === true,
        runStage: contextStageRunner(root, (env, stageLog) => ({
          prefix: root,
          env,
          services: systemdControl(stageLog),
          log: stageLog,
        })),
        log,
      });
      return result.exitCode;
    },
  );

const installCommand = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} install`,
      summary: 'build-time stage: packages, engine, model (from the build plan); nothing per-VM',
      usage: `${TOOL} install --plan build-plan.json [--root DIR] [--no-runner]`,
      options: {
        plan: { type: 'string' },
        root: { type: 'string' },
        'no-runner': { type: 'boolean', default: false },
      },
      details:
        'Examples:\n' +
        `  ${TOOL} install --plan /opt/slm-copilot/build-plan.json --no-runner   # as appliance.sh runs it\n` +
        `  ${TOOL} install --plan build-plan.json --root /tmp/appliance`,
    },
    {
      plan: 'the build plan written by the image build (profile, mirrors, model, engines)',
      root: stageHelp.root,
      'no-runner': stageHelp['no-runner'],
    },
    argv,
    async ({ values, log }) => {
      if (typeof values.plan !== 'string') {
        process.stderr.write(`${usageLine(`${TOOL} install`, new Error('missing option --plan'))}\n`);
        return ExitCode.usage;
      }
      const planFile = values.plan;
      const plan = JSON.parse(
        await readFile(planFile, 'utf8').catch((error: Error) => {
          throw new TaskError(`cannot read the build plan ${planFile}: ${error.message}`, {
            exitCode: ExitCode.environment,
          });
        }),
      ) as BuildPlan;
      return stage(
        'install',
        values,
        async (stageLog) => void (await install(plan, { prefix: rootOf(values), log: stageLog })),
        log,
      );
    },
  );

export function main(argv: string[]): Promise<number> {
  return runSubcommands(
    TOOL,
    'the SLM-Copilot appliance lifecycle (one-apps stages: install at build time; configure, bootstrap at every boot)',
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
      reconfigure: {
        summary: 'apply a context file now (without one-context: boot and CONTEXT CD changes)',
        run: reconfigureCommand,
      },
      check: { summary: 'check the running appliance as a client would (also: slm-copilot check)', run: checkCommand },
      cache: { summary: "save or restore the engine's prompt cache (run by its systemd unit)", run: cacheCommand },
      team: { summary: "the service roles' OneGate refresher (run by slm-copilot-team.service)", run: teamCommand },
    },
    argv,
  );
}

process.exitCode = await main(process.argv.slice(2));
