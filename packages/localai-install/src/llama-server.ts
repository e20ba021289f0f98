import path from 'node:path';
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import type { EnginePlan } from './plan.js';
import type { ModelFacts } from './model.js';

/**
 * Prompt-cache reuse chunk (llama-server `--cache-reuse`): lets a request reuse cached KV
 * chunks of at least this many tokens even when an earlier part of the prompt changed.
 */
export const CACHE_REUSE_TOKENS = 256;

/**
 * The llama-server command line for the plan. Pure; each flag checked against llama.cpp's common/arg.cpp.
 * `slotSaveDir`: the saved prompt cache's directory (see slot-cache.ts), when persistence is on.
 */
export function llamaServerArgs(
  config: Config,
  plan: EnginePlan,
  model: ModelFacts,
  paths: AppliancePaths,
  slotSaveDir: string | null = null,
): string[] {
  return [
    '--host',
    paths.engine.host,
    '--port',
    String(paths.engine.port),
    '--model',
    path.join(paths.modelsDir, model.fileName),
    '--alias',
    config.modelId,
    '--ctx-size',
    String(plan.totalContext),
    '--parallel',
    String(plan.parallelSlots),
    // The KV cache's type, as the RAM plan counted it (ONEAPP_COPILOT_KV_CACHE_TYPE, never changed).
    '--cache-type-k',
    plan.kvCacheType,
    '--cache-type-v',
    plan.kvCacheType,
    // Explicit, though `auto` resolves to on for the CPU backend: a quantized V cache is refused
    // without it (src/llama-context.cpp llama_init_from_model), and the plan's reserve holds only
    // with it (no KQ matrix of context × ubatch × heads).
    '--flash-attn',
    'on',
    // Reply cap for requests that set no max_tokens (llama-server's default: none, until the context
    // is full — hours on a CPU); a request's own max_tokens takes priority (server-context.cpp).
    ...(config.maxTokens > 0 ? ['--n-predict', String(config.maxTokens)] : []),
    '--threads',
    String(plan.threads),
    '--threads-batch',
    String(plan.threads),
    '--jinja',
    '--chat-template-file',
    paths.engine.chatTemplate,
    '--cache-prompt',
    '--cache-reuse',
    String(CACHE_REUSE_TOKENS),
    // Bounded by the plan: llama-server's default (8 GiB) is not counted in the RAM check.
    '--cache-ram',
    String(plan.promptCacheMiB),
    // Slots saved at stop and restored at start by the prompt-cache unit (POST /slots, loopback only:
    // the gateway never proxies /slots).
    ...(slotSaveDir ? ['--slot-save-path', slotSaveDir] : []),
    // Weights stay resident (the unit allows it: LimitMEMLOCK=infinity). pnpm bench measured 1.5×
    // generation with steady timings on a host that pages idle memory out, and the model is read in
    // full at start-up, so /readyz turns 200 only when the first request will not fault it in.
    '--mlock',
    // llama-server's own HTTP timeout (default 600 s) would cut a long CPU prefill short.
    '--timeout',
    String(config.requestTimeoutSeconds),
    '--no-ui',
    ...(config.metrics ? ['--metrics'] : []),
  ];
}
