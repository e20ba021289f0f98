import type { Config } from '@slm-copilot/context-schema';
import { ExitCode, TaskError, type HostFacts } from '@slm-copilot/task-kit';
import { kvCacheBytes } from '@slm-copilot/model-fetch';
import type { ModelFacts } from './model.js';

const GiB = 1024 ** 3;
/**
 * RAM kept for the OS, nginx and the engine's compute buffers (measured buffers stay below 1 GiB for a
 * 24B model at ubatch 512).
 */
export const RESERVED_BYTES = 1.5 * GiB;
/** Context sizes are rounded down to this (llama.cpp pads the KV cache to 256). */
const CONTEXT_STEP = 256;
const MIN_CONTEXT = 2048;
const MiB = 1024 ** 2;
/** llama-server's own default (`--cache-ram 8192`); LocalAI's default is no limit at all. */
export const PROMPT_CACHE_MAX_MIB = 8192;
/**
 * The host-RAM prompt cache keeps the KV state of conversations that left their slot, so a Cline
 * task (or a second user) that comes back does not pay a full prefill again. Two full per-request
 * contexts cover switching between tasks; more only costs RAM.
 */
export const PROMPT_CACHE_CONTEXTS = 2;

export interface PlanWarning {
  code: 'no-avx2' | 'context-clamped-ram' | 'context-clamped-trained' | 'threads-above-cpus';
  /** The context variable the operator can change, if any. */
  variable?: string;
  message: string;
}

/** What the engine will really run with, decided once from config + model + host. */
export interface EnginePlan {
  threads: number;
  parallelSlots: number;
  /** Tokens each request gets (ONEAPP_COPILOT_CONTEXT_SIZE after clamping). */
  contextPerSlot: number;
  /** What the engine is told: llama.cpp splits it across slots. */
  totalContext: number;
  modelBytes: number;
  kvBytes: number;
  /**
   * The engine's host-RAM prompt cache (llama-server `--cache-ram`, LocalAI option `cache_ram`), in
   * MiB: what is left after model + KV + reserve, at most PROMPT_CACHE_CONTEXTS contexts and
   * PROMPT_CACHE_MAX_MIB. 0 disables it (the slot's own prompt cache still works). Unbounded, it
   * grows until the VM runs out of memory.
   */
  promptCacheMiB: number;
  /** Model + KV cache + prompt cache + reserve. */
  estimatedBytes: number;
  memTotalBytes: number;
  hasAvx2: boolean;
  warnings: PlanWarning[];
}

const gib = (b: number) => `${(b / GiB).toFixed(1)} GiB`;

/**
 * Decides threads and context from the config, the GGUF and the host. Pure.
 * Clamps the context (with a warning naming ONEAPP_COPILOT_CONTEXT_SIZE) when model + KV cache
 * would not fit in RAM or when it exceeds the trained context; refuses only when the model alone
 * does not fit.
 */
export function planEngine(config: Config, model: ModelFacts, host: HostFacts): EnginePlan {
  const warnings: PlanWarning[] = [];
  const hasAvx2 = host.cpuFlags.includes('avx2');
  if (!hasAvx2) {
    warnings.push({
      code: 'no-avx2',
      message:
        `this VM's CPU (${host.cpuModel}) does not expose AVX2: inference falls back to a much slower build. ` +
        'Set CPU_MODEL="host-passthrough" in the VM template (CPU_MODEL = [ MODEL = "host-passthrough" ]) ' +
        'and restart the VM.',
    });
  }

  const threads = config.threads === 0 ? host.physicalCores : config.threads;
  if (threads > host.logicalCpus) {
    warnings.push({
      code: 'threads-above-cpus',
      variable: 'ONEAPP_COPILOT_THREADS',
      message:
        `ONEAPP_COPILOT_THREADS=${config.threads} is more than the ${host.logicalCpus} vCPUs of this VM; ` +
        'threads will compete and slow generation down',
    });
  }

  const slots = config.parallelSlots;
  let perSlot = config.contextSize;
  if (perSlot > model.contextLength) {
    warnings.push({
      code: 'context-clamped-trained',
      variable: 'ONEAPP_COPILOT_CONTEXT_SIZE',
      message:
        `ONEAPP_COPILOT_CONTEXT_SIZE=${config.contextSize} exceeds the model's trained context of ` +
        `${model.contextLength} tokens; using ${model.contextLength}`,
    });
    perSlot = model.contextLength;
  }

  const perToken = kvCacheBytes(model, 1); // f16 cache: 2 bytes per element
  const available = host.memTotalBytes - RESERVED_BYTES - model.bytes;
  if (available < perToken * MIN_CONTEXT * slots) {
    throw new TaskError(
      `the model (${model.fileName}, ${gib(model.bytes)}) does not fit in this VM's ` +
        `${gib(host.memTotalBytes)} of RAM ` +
        `with ${slots} slot(s) of ${MIN_CONTEXT} tokens and ${gib(RESERVED_BYTES)} kept for the system`,
      {
        exitCode: ExitCode.environment,
        hint:
          `give the VM at least ${gib(model.bytes + RESERVED_BYTES + perToken * MIN_CONTEXT * slots + 0.5 * GiB)} ` +
          'of memory, or lower ONEAPP_COPILOT_PARALLEL',
      },
    );
  }
  const fitting = Math.floor(available / perToken / slots / CONTEXT_STEP) * CONTEXT_STEP;
  if (fitting < perSlot) {
    warnings.push({
      code: 'context-clamped-ram',
      variable: 'ONEAPP_COPILOT_CONTEXT_SIZE',
      message:
        `ONEAPP_COPILOT_CONTEXT_SIZE=${config.contextSize} × ${slots} slot(s) needs ` +
        `${gib(perToken * perSlot * slots)} of KV cache besides the ${gib(model.bytes)} model, ` +
        `more than this VM's ${gib(host.memTotalBytes)} allows; using ${fitting} tokens per request`,
    });
    perSlot = fitting;
  }

  const kvBytes = perToken * perSlot * slots;
  const cacheBudget = Math.min(
    available - kvBytes,
    PROMPT_CACHE_CONTEXTS * perToken * perSlot,
    PROMPT_CACHE_MAX_MIB * MiB,
  );
  const promptCacheMiB = Math.max(0, Math.floor(cacheBudget / MiB));
  return {
    threads,
    parallelSlots: slots,
    contextPerSlot: perSlot,
    totalContext: perSlot * slots,
    modelBytes: model.bytes,
    kvBytes,
    promptCacheMiB,
    estimatedBytes: model.bytes + kvBytes + promptCacheMiB * MiB + RESERVED_BYTES,
    memTotalBytes: host.memTotalBytes,
    hasAvx2,
    warnings,
  };
}
