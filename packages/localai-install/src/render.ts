import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import type { FileSpec, HostFacts } from '@slm-copilot/task-kit';
import { localAiEnv, localAiModelYamlPath, renderEnvFile, renderLocalAiModelYaml } from './localai.js';
import { llamaServerArgs } from './llama-server.js';
import type { ModelFacts } from './model.js';
import { planEngine, type EnginePlan } from './plan.js';
import { ENGINE_UNIT, renderEngineUnit } from './unit.js';
import { LOCALAI_VERSION } from './versions.js';

export interface EngineInputs {
  config: Config;
  model: ModelFacts;
  host: HostFacts;
  paths: AppliancePaths;
  /** Text of our Devstral chat template (see loadChatTemplate). */
  chatTemplate: string;
}

export interface EngineRender {
  plan: EnginePlan;
  files: FileSpec[];
  unit: string;
}

/** Seconds systemd gives the engine to start: mapping a 14 GB GGUF from a cold disk takes minutes. */
const START_TIMEOUT_SECONDS = 900;

/** Every file the configured engine needs. Pure: same inputs, same bytes. */
export function renderEngine({ config, model, host, paths, chatTemplate }: EngineInputs): EngineRender {
  const plan = planEngine(config, model, host);
  const unitPath = path.join(paths.systemdDir, ENGINE_UNIT);
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
    files.push({
      path: unitPath,
      mode: 0o644,
      text: renderEngineUnit(
        {
          description: `SLM-Copilot inference engine (llama.cpp llama-server, model ${config.modelId})`,
          execStart: [paths.engine.llamaServerBinary, ...llamaServerArgs(config, plan, model, paths)],
          startTimeoutSeconds: START_TIMEOUT_SECONDS,
        },
        paths,
      ),
    });
  }
  return { plan, files, unit: ENGINE_UNIT };
}

/** Where our chat template ships: beside src/ in the workspace, beside dist/ in a bundle. */
export const chatTemplateSource = new URL('../templates/devstral-chat-template.jinja', import.meta.url);

export function loadChatTemplate(): Promise<string> {
  return readFile(chatTemplateSource, 'utf8');
}
