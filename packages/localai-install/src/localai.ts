import path from 'node:path';
import { stringify } from 'yaml';
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import type { EnginePlan } from './plan.js';
import type { ModelFacts } from './model.js';
import { CACHE_REUSE_TOKENS } from './llama-server.js';

/** Devstral's recommended sampling temperature; requests may override it. */
export const DEFAULT_TEMPERATURE = 0.15;

/** LocalAI's model YAML (core/config/model_config.go keys, checked by the contract test). */
export function localAiModel(
  config: Config,
  plan: EnginePlan,
  model: ModelFacts,
  paths: AppliancePaths,
): Record<string, unknown> {
  return {
    name: config.modelId,
    backend: 'llama-cpp',
    parameters: {
      model: model.fileName,
      temperature: DEFAULT_TEMPERATURE,
      // Reply cap for requests that set no max_tokens (LocalAI's default 0 = none); a request's own
      // max_tokens replaces it (core/http/middleware/request.go), as with llama-server's --n-predict.
      ...(config.maxTokens > 0 ? { max_tokens: config.maxTokens } : {}),
    },
    // Always explicit: unset, LocalAI 4.x caps the context at 8192.
    context_size: plan.totalContext,
    threads: plan.threads,
    // The KV cache's type, as the RAM plan counted it (core/config/model_config.go cache_type_k/v,
    // passed to llama.cpp's kv_cache_type_from_str by backend/cpp/llama-cpp/grpc-server.cpp).
    cache_type_k: plan.kvCacheType,
    cache_type_v: plan.kvCacheType,
    // As llama-server's `--flash-attn on` (see llamaServerArgs); "enabled" rather than "on", which
    // YAML 1.1 readers take for a boolean. LocalAI's default is "auto".
    flash_attention: 'enabled',
    mmap: true,
    // Weights stay resident, as with llama-server's --mlock (see llamaServerArgs).
    mmlock: true,
    // Reuse the KV cache of a repeated prompt prefix (Cline resends a ~10k-token system prompt every turn).
    prompt_cache_all: true,
    template: { use_tokenizer_template: true },
    options: [
      'use_jinja:true',
      `parallel:${plan.parallelSlots}`,
      `cache_reuse:${CACHE_REUSE_TOKENS}`,
      // Bounded by the plan: LocalAI's default is no limit (-1).
      `cache_ram:${plan.promptCacheMiB}`,
      // Passed through to llama.cpp's own argument parser: our template instead of the GGUF's stock one.
      `--chat-template-file:${paths.engine.chatTemplate}`,
    ],
  };
}

export function renderLocalAiModelYaml(
  config: Config,
  plan: EnginePlan,
  model: ModelFacts,
  paths: AppliancePaths,
): string {
  const header = '# Rendered by SLM-Copilot (localai-install) on every boot; edits are overwritten.\n';
  return `${header}${stringify(localAiModel(config, plan, model, paths))}`;
}

/** LocalAI's environment (core/cli/run.go env names, checked by the contract test). */
export function localAiEnv(config: Config, plan: EnginePlan, paths: AppliancePaths): Record<string, string> {
  return {
    LOCALAI_ADDRESS: `${paths.engine.host}:${paths.engine.port}`,
    LOCALAI_MODELS_PATH: paths.modelsDir,
    LOCALAI_BACKENDS_PATH: paths.engine.localaiBackendsDir,
    LOCALAI_DATA_PATH: '/var/lib/slm-copilot-engine/data',
    LOCALAI_THREADS: String(plan.threads),
    LOCALAI_CONTEXT_SIZE: String(plan.totalContext),
    // Load the model at start-up: LocalAI's /readyz says nothing about models, and a load failure then stops start-up.
    LOCALAI_LOAD_TO_MEMORY: config.modelId,
    LOCALAI_LOG_LEVEL: 'info',
    // A sovereign appliance: no web UI, no galleries, no backend upgrade checks, no agents phoning anywhere.
    LOCALAI_DISABLE_WEBUI: 'true',
    LOCALAI_AUTOLOAD_GALLERIES: 'false',
    LOCALAI_AUTOLOAD_BACKEND_GALLERIES: 'false',
    LOCALAI_GALLERIES: '[]',
    LOCALAI_BACKEND_GALLERIES: '[]',
    LOCALAI_AUTO_UPGRADE_BACKENDS: 'false',
    LOCALAI_DISABLE_GALLERY_ENDPOINT: 'true',
    LOCALAI_DISABLE_RUNTIME_SETTINGS: 'true',
    LOCALAI_DISABLE_MCP: 'true',
    LOCALAI_DISABLE_AGENTS: 'true',
    LOCALAI_DISABLE_ASSISTANT: 'true',
    LOCALAI_SUBTLE_KEY_COMPARISON: 'true',
    LOCALAI_DISABLE_METRICS_ENDPOINT: config.metrics ? 'false' : 'true',
    LOCALAI_UPLOAD_LIMIT: String(config.maxBodyMegabytes),
  };
}

export function renderEnvFile(env: Record<string, string>): string {
  const lines = Object.entries(env).map(([k, v]) => {
    if (!/^[A-Za-z0-9_]+$/.test(k) || /[\n\r"\\$`]/.test(v)) throw new Error(`internal: unsafe env entry ${k}`);
    return `${k}="${v}"`;
  });
  return `# Rendered by SLM-Copilot (localai-install) on every boot; edits are overwritten.\n${lines.join('\n')}\n`;
}

export const localAiModelYamlPath = (config: Config, paths: AppliancePaths) =>
  path.join(paths.modelsDir, `${config.modelId}.yaml`);
