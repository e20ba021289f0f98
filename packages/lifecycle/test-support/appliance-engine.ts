// The engine exactly as the appliance renders it, under a temp root, for the rigs that start a real
// llama-server with the appliance's flags (bench, agents, team): context defaults + overrides, this
// machine's host facts, the model's manifest; the model linked where the render expects it.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { appliancePaths, parseContext, type AppliancePaths, type Config } from '@slm-copilot/context-schema';
import {
  loadChatTemplate,
  modelFactsFromManifest,
  renderEngine,
  slotCacheDir,
  type EnginePlan,
  type EngineRender,
} from '@slm-copilot/localai-install';
import { buildManifest } from '@slm-copilot/model-fetch';
import { applyFileSet, gatherHostFacts, type HostFacts } from '@slm-copilot/task-kit';

/** The API key the rendered context carries unless one is given (never a real one). */
export const TEST_ENGINE_KEY = 'sk-bench-0123456789abcdef0123';

export interface ApplianceEngine {
  config: Config;
  paths: AppliancePaths;
  host: HostFacts;
  plan: EnginePlan;
  render: EngineRender;
  /** The rendered unit's ExecStart, verbatim. */
  execStart: string[];
  /** ExecStart's arguments without the binary, --host and --port (startLlamaServer adds those). */
  args: string[];
  /** The engine's `--slot-save-path` (made here, 0700), when the rendered config persists the prompt cache. */
  slotDir: string | null;
}

/**
 * Renders the engine exactly as the appliance does (context defaults + `overrides`, this machine's
 * host facts, the model's manifest) under `root`, links the model where the render expects it and
 * writes our chat template. Returns the llama-server command line of the rendered unit.
 */
export async function renderApplianceEngine(opts: {
  root: string;
  model: string;
  sha256?: string;
  enginePort: number;
  overrides?: Record<string, string>;
  apiKey?: string;
}): Promise<ApplianceEngine> {
  const config = parseContext({
    ONEAPP_COPILOT_PASSWORD: opts.apiKey ?? TEST_ENGINE_KEY,
    ...opts.overrides,
    ONEAPP_COPILOT_ENGINE: 'llama-server',
  });
  const base = appliancePaths(opts.root);
  const paths: AppliancePaths = { ...base, engine: { ...base.engine, port: opts.enginePort } };
  const manifest = await buildManifest(opts.model, opts.sha256 ? { sha256: opts.sha256 } : {});
  const model = modelFactsFromManifest(manifest);
  const host = await gatherHostFacts();
  // A fresh id, as configure mints one for a new fingerprint (lifecycle prompt-cache/prepare.ts).
  const slotCacheId = randomBytes(16).toString('hex');
  const render = renderEngine({ config, model, host, paths, chatTemplate: await chatTemplate(), slotCacheId });
  await applyFileSet(
    '/',
    render.files.filter((f) => f.path === paths.engine.chatTemplate),
  );
  await mkdir(paths.modelsDir, { recursive: true });
  await symlink(path.resolve(opts.model), path.join(paths.modelsDir, model.fileName)).catch(
    (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    },
  );
  const unit = render.files.find((f) => f.path.endsWith(render.unit));
  const line = unit?.text.split('\n').find((l) => l.startsWith('ExecStart='));
  if (!line) throw new Error('the rendered engine unit has no ExecStart');
  const execStart = line.slice('ExecStart='.length).trim().split(/\s+/);
  const slotDir = execStart.includes('--slot-save-path') ? slotCacheDir(paths, slotCacheId) : null;
  if (slotDir) await mkdir(slotDir, { recursive: true, mode: 0o700 });
  const args: string[] = [];
  for (let i = 1; i < execStart.length; i++) {
    if (execStart[i] === '--host' || execStart[i] === '--port') i++;
    else args.push(execStart[i]!);
  }
  return { config, paths, host, plan: render.plan, render, execStart, args, slotDir };
}

/** Our Devstral template: beside localai-install in the workspace, else the one an appliance installed. */
async function chatTemplate(): Promise<string> {
  try {
    return await loadChatTemplate();
  } catch (e) {
    const installed = appliancePaths('').engine.chatTemplate;
    if (existsSync(installed)) return readFile(installed, 'utf8');
    throw e;
  }
}
