import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { appliancePaths, parseContext, parseContextFile } from '@slm-copilot/context-schema';
import { readManifest } from '@slm-copilot/model-fetch';
import {
  applyFileSet,
  ExitCode,
  gatherHostFacts,
  resolveRoot,
  runCommand,
  runSubcommands,
  TaskError,
  type Logger,
} from '@slm-copilot/task-kit';
import { installLlamaServer, installLocalAi } from './install.js';
import { modelFactsFromManifest } from './model.js';
import { loadChatTemplate, renderEngine } from './render.js';

const TOOL = 'localai-install';

const contextOptions = {
  'context-file': { type: 'string' },
  model: { type: 'string' },
  root: { type: 'string' },
} as const;
const contextHelp = {
  'context-file': 'read ONEAPP_* values from this context.sh (read, never executed) instead of the environment',
  model: 'the GGUF (its <file>.manifest.json from model-fetch is read)',
  root: 'render under this prefix as if it were / (default: $SLM_COPILOT_ROOT or /)',
};

async function inputs(values: Record<string, unknown>, log: Logger) {
  let env: Record<string, string | undefined> = process.env;
  if (typeof values['context-file'] === 'string') {
    const parsed = parseContextFile(await readFile(values['context-file'], 'utf8'));
    for (const w of parsed.warnings) log.warn(w);
    env = parsed.values;
  }
  const config = parseContext(env);
  if (typeof values.model !== 'string') throw new TaskError('--model is required', { exitCode: ExitCode.usage });
  const manifest = await readManifest(values.model);
  if (!manifest) {
    throw new TaskError(`no manifest beside ${values.model}`, {
      exitCode: ExitCode.usage,
      hint: `model-fetch inspect ${values.model} --write`,
    });
  }
  return { config, model: modelFactsFromManifest(manifest), host: await gatherHostFacts() };
}

const plan = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} plan`,
      summary: 'print the threads, context and RAM the engine would run with (and every warning)',
      usage: `${TOOL} plan --model FILE.gguf [--context-file context.sh]`,
      options: contextOptions,
    },
    contextHelp,
    argv,
    async ({ values, log }) => {
      const { config, model, host } = await inputs(values, log);
      const { plan } = renderEngine({ config, model, host, paths: appliancePaths(), chatTemplate: '' });
      process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
      for (const w of plan.warnings) log.warn(w.message);
    },
  );

const render = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} render`,
      summary: 'write the engine files (model YAML, env, systemd unit, chat template) for the configured engine',
      usage: `${TOOL} render --model FILE.gguf [--context-file context.sh] [--root DIR]`,
      options: contextOptions,
      details: 'Prints each file as created, updated or unchanged. Unchanged inputs give byte-identical files.',
    },
    contextHelp,
    argv,
    async ({ values, log }) => {
      const { config, model, host } = await inputs(values, log);
      const result = renderEngine({
        config,
        model,
        host,
        paths: appliancePaths(),
        chatTemplate: await loadChatTemplate(),
      });
      for (const w of result.plan.warnings) log.warn(w.message);
      const root = resolveRoot(values.root as string | undefined);
      for (const a of await applyFileSet(root, result.files)) log.info(`${a.path}: ${a.result}`);
    },
  );

const localai = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} localai`,
      summary: 'install the pinned LocalAI binary (checksum-verified) and its llama-cpp backend (pinned OCI tag)',
      usage: `${TOOL} localai [--mirror DIR_OR_URL]... [--offline] [--root DIR]`,
      options: {
        mirror: { type: 'string', multiple: true },
        offline: { type: 'boolean', default: false },
        root: { type: 'string' },
      },
      details:
        'Mirrors are tried first (<mirror>/<artifact-name>), then the GitHub release unless --offline.\nOffline backend installs need local-ai-backends-<tag>-cpu-llama-cpp.tar (an OCI image tarball) in a mirror directory.',
    },
    { mirror: 'a mirror directory or http(s) base (repeatable)', offline: 'mirrors only', root: contextHelp.root },
    argv,
    async ({ values, log }) => {
      const root = resolveRoot(values.root as string | undefined);
      const result = await installLocalAi({
        paths: appliancePaths(root === '/' ? '' : root),
        mirrors: (values.mirror as string[] | undefined) ?? [],
        upstream: !values.offline,
        log,
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    },
  );

const llamaServer = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} llama-server`,
      summary: 'install the llama-server runtime (dispatching build of the pinned llama.cpp source)',
      usage: `${TOOL} llama-server --from ARCHIVE [--root DIR]`,
      options: { from: { type: 'string' }, root: { type: 'string' } },
    },
    { from: 'the runtime archive, llama-server-<release>-dispatch.tar.xz', root: contextHelp.root },
    argv,
    async ({ values, log }) => {
      if (typeof values.from !== 'string') throw new TaskError('--from is required', { exitCode: ExitCode.usage });
      const root = resolveRoot(values.root as string | undefined);
      const result = await installLlamaServer(path.resolve(values.from), appliancePaths(root === '/' ? '' : root), log);
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    },
  );

export function main(argv: string[]): Promise<number> {
  return runSubcommands(
    TOOL,
    'the SLM-Copilot inference engine: LocalAI (llama-cpp backend) or llama.cpp llama-server',
    {
      plan: { summary: 'print threads/context/RAM decisions and warnings', run: plan },
      render: { summary: 'write the engine configuration files', run: render },
      localai: { summary: 'install LocalAI + llama-cpp backend (build time)', run: localai },
      'llama-server': { summary: 'install llama-server (build time)', run: llamaServer },
    },
    argv,
  );
}

process.exitCode = await main(process.argv.slice(2));
