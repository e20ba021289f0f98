import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import type { FileSpec, HostFacts } from '@slm-copilot/task-kit';
import { localAiEnv, localAiModelYamlPath, renderEnvFile, renderLocalAiModelYaml } from './localai.js';
import { llamaServerArgs } from './llama-server.js';
import type { ModelFacts } from './model.js';
import { planEngine, type EnginePlan } from './plan.js';
import { renderSlotCacheUnit, SLOT_CACHE_UNIT } from './slot-cache-unit.js';
import { slotCacheDir, slotCacheEnabled, slotCacheFingerprint } from './slot-cache.js';
import { ENGINE_UNIT, renderEngineUnit } from './unit.js';
import { LOCALAI_VERSION } from './versions.js';

export interface EngineInputs {
  config: Config;
  model: ModelFacts;
  host: HostFacts;
  paths: AppliancePaths;
  /** Text of our Devstral chat template (see loadChatTemplate). */
  chatTemplate: string;
  /**
   * The saved prompt cache's id (see slot-cache.ts and engineCacheFingerprint), minted by the lifecycle;
   * without it nothing is saved even when ONEAPP_COPILOT_PROMPT_CACHE_PERSIST is YES.
   */
  slotCacheId?: string | null;
}

export interface EngineRender {
  plan: EnginePlan;
  files: FileSpec[];
  /** Files of a previous render that must not be left behind (the prompt-cache unit when it is off). */
  remove: string[];
  unit: string;
}

/** Seconds systemd gives the engine to start: mapping a 14 GB GGUF from a cold disk takes minutes. */
const START_TIMEOUT_SECONDS = 900;

/** Every file the configured engine needs. Pure: same inputs, same bytes. */
export function renderEngine({ config, model, host, paths, chatTemplate, slotCacheId }: EngineInputs): EngineRender {
  const plan = planEngine(config, model, host);
  const unitPath = path.join(paths.systemdDir, ENGINE_UNIT);
  const cacheUnitPath = path.join(paths.systemdDir, SLOT_CACHE_UNIT);
  const cacheId = slotCacheEnabled(config) ? (slotCacheId ?? null) : null;
  const files: FileSpec[] = [{ path: paths.engine.chatTemplate, text: chatTemplate, mode: 0o644 }];
  if (config.engine === 'localai') {
    const envFile = path.join(paths.configDir, 'engine.env');
    files.push(
      {
        path: localAiModelYamlPath(config, paths),
        text: renderLocalAiModelYaml(config, plan, model, paths),
        mode: 0o644,
      },
      { path: envFile, text: renderEnvFile(localAiEnv(config, plan, paths)), mode: 0o644 },
      {
        path: unitPath,
        mode: 0o644,
        text: renderEngineUnit(
          {
            description:
              `SLM-Copilot inference engine (LocalAI ${LOCALAI_VERSION}, llama-cpp backend, ` +
              `model ${config.modelId})`,
            execStart: [paths.engine.localaiBinary, 'run'],
            environmentFile: envFile,
            startTimeoutSeconds: START_TIMEOUT_SECONDS,
          },
          paths,
        ),
      },
    );
  } else {
    const slotDir = cacheId ? slotCacheDir(paths, cacheId) : null;
    files.push({
      path: unitPath,
      mode: 0o644,
      text: renderEngineUnit(
        {
          description: `SLM-Copilot inference engine (llama.cpp llama-server, model ${config.modelId})`,
          execStart: [paths.engine.llamaServerBinary, ...llamaServerArgs(config, plan, model, paths, slotDir)],
          startTimeoutSeconds: START_TIMEOUT_SECONDS,
          // llama-server refuses a --slot-save-path that does not exist. Made by the engine's own user inside
          // its state directory: listing it in StateDirectory= instead would nest two entries, which
          // systemd has refused with DynamicUser= ("Failed to set up special execution directory",
          // systemd issue 24783, seen on v251).
          ...(slotDir
            ? {
                wants: [SLOT_CACHE_UNIT],
                execStartPre: [['/bin/mkdir', '-p', '-m', '0700', slotDir]],
                stateDirectoryMode: '0700',
              }
            : {}),
        },
        paths,
      ),
    });
    if (cacheId) {
      const text = renderSlotCacheUnit({ id: cacheId, plan, paths, engineStartSeconds: START_TIMEOUT_SECONDS });
      files.push({ path: cacheUnitPath, mode: 0o644, text });
    }
  }
  return { plan, files, remove: cacheId ? [] : [cacheUnitPath], unit: ENGINE_UNIT };
}

/**
 * What the saved prompt cache of this render is valid for (slot-cache.ts), or null when persistence is
 * off (LocalAI, or ONEAPP_COPILOT_PROMPT_CACHE_PERSIST=NO). Pure.
 */
export function engineCacheFingerprint(
  inputs: Omit<EngineInputs, 'slotCacheId'>,
  facts: { modelSha256: string; engineSha256: string | null; apiKeys: readonly string[] },
): string | null {
  const { config, model, host, paths, chatTemplate } = inputs;
  if (!slotCacheEnabled(config)) return null;
  const engineArgs = llamaServerArgs(config, planEngine(config, model, host), model, paths);
  return slotCacheFingerprint({ ...facts, chatTemplate, engineArgs });
}

/** Where our chat template ships: beside src/ in the workspace, beside dist/ in a bundle. */
export const chatTemplateSource = new URL('../templates/devstral-chat-template.jinja', import.meta.url);

export function loadChatTemplate(): Promise<string> {
  return readFile(chatTemplateSource, 'utf8');
}
