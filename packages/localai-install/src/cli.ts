import path from 'node:path';
import { appliancePaths, loadContext, parseContext } from '@slm-copilot/context-schema';
import { readManifest } from '@slm-copilot/model-fetch';
import {
  applyFileSet,
  gatherHostFacts,
  resolveRoot,
  runCommand,
  runSubcommands,
  UsageError,
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

/** Config, model facts and host facts: every input is checked before anything is written. */
async function inputs(values: Record<string, unknown>, log: Logger) {
  if (typeof values.model !== 'string') throw new UsageError('missing option --model');
  const manifest = await readManifest(values.model);
  if (!manifest) {
    throw new UsageError(
      `--model ${values.model}: no manifest beside it`,
      `create it with: model-fetch inspect ${values.model} --write`,
    );
  }
  const config = parseContext(await loadContext(values['context-file'] as string | undefined, log));
  return { config, model: modelFactsFromManifest(manifest), host: await gatherHostFacts() };
}

/** The appliance paths under `--root` (the prefix is '' for the real root). */
const pathsUnder = (root: string) => appliancePaths(root === '/' ? '' : root);

const plan = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} plan`,
      summary: 'print the threads, context and RAM the engine would run with (and every warning)',
      usage: `${TOOL} plan --model FILE.gguf [--context-file context.sh]`,
      options: { 'context-file': contextOptions['context-file'], model: contextOptions.model },
      details:
        'Prints the plan as JSON on stdout; writes nothing.\n\n' +
        'Examples:\n' +
        `  ${TOOL} plan --model /opt/slm-copilot/models/model.gguf\n` +
        `  ${TOOL} plan --model model.gguf --context-file context.sh`,
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
      details:
        'Prints each file as created, updated or unchanged. Unchanged inputs give byte-identical files.\n\n' +
        'Examples:\n' +
        `  ${TOOL} render --model /opt/slm-copilot/models/model.gguf\n` +
        `  ${TOOL} render --model model.gguf --context-file context.sh --root /tmp/appliance`,
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
        'Mirrors are tried first (<mirror>/<artifact-name>), then the GitHub release unless --offline.\n' +
        'Offline backend installs need local-ai-backends-<tag>-cpu-llama-cpp.tar (an OCI image tarball)\n' +
        'in a mirror directory.\n\n' +
        'Examples:\n' +
        `  ${TOOL} localai\n` +
        `  ${TOOL} localai --mirror /srv/mirror --offline --root /tmp/appliance`,
    },
    { mirror: 'a mirror directory or http(s) base (repeatable)', offline: 'mirrors only', root: contextHelp.root },
    argv,
    async ({ values, log }) => {
      const root = resolveRoot(values.root as string | undefined);
      const result = await installLocalAi({
        paths: pathsUnder(root),
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
      details:
        'Replaces an earlier install as a whole; a broken archive leaves the previous one in place.\n\n' +
        'Examples:\n' +
        `  ${TOOL} llama-server --from llama-server-<release>-dispatch.tar.xz\n` +
        `  ${TOOL} llama-server --from runtime.tar.xz --root /tmp/appliance`,
    },
    { from: 'the runtime archive, llama-server-<release>-dispatch.tar.xz', root: contextHelp.root },
    argv,
    async ({ values, log }) => {
      if (typeof values.from !== 'string') throw new UsageError('missing option --from');
      const root = resolveRoot(values.root as string | undefined);
      const result = await installLlamaServer(path.resolve(values.from), pathsUnder(root), log);
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
