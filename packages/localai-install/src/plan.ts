import type { Config, KvCacheType } from '@slm-copilot/context-schema';
import { ExitCode, TaskError, type HostFacts } from '@slm-copilot/task-kit';
import { KV_BYTES_PER_ELEMENT, KV_CACHE_TYPES, kvCacheBytesOfType, kvCacheTypeFits } from '@slm-copilot/model-fetch';
import type { ModelFacts } from './model.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/**
 * RAM kept for the OS, nginx and the engine's compute buffers. Measured buffers stay below 1 GiB
 * for a 24B model at ubatch 512; with flash attention (always on: see llamaServerArgs) they grow
 * by only ~1 KiB per context token (the f16 KQ mask), 60 MiB from 4 k to 64 k on the Devstral-shaped
 * test model. Without flash attention the KQ matrix would need GiBs at 64 k: it is never off.
 */
export const RESERVED_BYTES = 1.5 * GiB;
/** Context sizes are rounded down to this (llama.cpp pads the KV cache to 256). */
const CONTEXT_STEP = 256;
const MIN_CONTEXT = 2048;
/** llama-server's own default (`--cache-ram 8192`); LocalAI's default is no limit at all. */
export const PROMPT_CACHE_MAX_MIB = 8192;
/**
 * The host-RAM prompt cache keeps the KV state of conversations that left their slot, so a Cline
 * task (or a second user) that comes back does not pay a full prefill again. Two full per-request
 * contexts cover switching between tasks; more only costs RAM.
 */
export const PROMPT_CACHE_CONTEXTS = 2;
/**
 * A saved slot file (llama-server `--slot-save-path`) besides the KV rows: per token, its id
 * (llama-context.cpp state_seq_save_file) and the cell's position, sequence count and sequence id
 * (llama-kv-cache.cpp state_write_meta), 4 bytes each.
 */
export const SLOT_FILE_BYTES_PER_TOKEN = 16;
/** A bound on the file's fixed part: magic, version, counts, and per layer the row type and size. */
export const SLOT_FILE_HEADER_BYTES = 64 * 1024;

export interface PlanWarning {
  code: 'no-avx2' | 'context-clamped-ram' | 'context-clamped-trained' | 'threads-above-cpus';
  /** The context variable the operator can change, if any. */
  variable?: string;
  message: string;
}

/**
 * Slots saved to disk and restored across engine restarts (issue #14 item 3).
 *
 * RAM: a restored slot's state is read into that slot's own KV cells, already counted in kvBytes;
 * nothing stays resident beside it (the file's pages are page cache, which the kernel reclaims).
 * Saving and restoring go through one temporary buffer the size of one contiguous range of one
 * tensor, i.e. one layer's K (or V) rows of the slot (llama-context.cpp llama_io_write_file /
 * llama_io_read_file, called per layer by llama-kv-cache.cpp state_write_data / state_read_data):
 * `transferBufferBytes`, counted in the estimate because a save at stop runs beside a full engine.
 * Disk: one file per slot of at most a full context of KV rows in the cache's type plus 16 bytes
 * per token; the persisted cache's disk budget is `diskBytes`.
 */
export interface SlotStatePlan {
  transferBufferBytes: number;
  fileMaxBytes: number;
  diskBytes: number;
}

/** What the engine will really run with, decided once from config + model + host. */
export interface EnginePlan {
  threads: number;
  parallelSlots: number;
  /** Tokens each request gets (ONEAPP_COPILOT_CONTEXT_SIZE after clamping). */
  contextPerSlot: number;
  /** What the engine is told: llama.cpp splits it across slots. */
  totalContext: number;
  /** ONEAPP_COPILOT_KV_CACHE_TYPE, as set: the plan never changes it. */
  kvCacheType: KvCacheType;
  /** KV-cache bytes per token of context, all layers, K and V, in kvCacheType. */
  kvBytesPerToken: number;
  modelBytes: number;
  /** KV cache of every slot: kvBytesPerToken × totalContext. */
  kvBytes: number;
  /**
   * The engine's host-RAM prompt cache (llama-server `--cache-ram`, LocalAI option `cache_ram`), in
   * MiB: what is left after model + KV + slot-state buffer + reserve, at most PROMPT_CACHE_CONTEXTS
   * contexts and PROMPT_CACHE_MAX_MIB. Cached prompts are stored in kvCacheType too. 0 disables it
   * (the slot's own prompt cache still works). Unbounded, it grows until the VM runs out of memory.
   */
  promptCacheMiB: number;
  slotState: SlotStatePlan;
  reservedBytes: number;
  /** Model + KV cache + prompt cache + slot-state buffer + reserve: never more than memTotalBytes. */
  estimatedBytes: number;
  memTotalBytes: number;
  hasAvx2: boolean;
  warnings: PlanWarning[];
}

const gib = (b: number) => `${(b / GiB).toFixed(1)} GiB`;

function cpuPlan(config: Config, host: HostFacts, warnings: PlanWarning[]): { threads: number; hasAvx2: boolean } {
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
  return { threads, hasAvx2 };
}

/** RAM one token of per-request context costs: its KV in every slot + its share of the slot-state buffer. */
function perTokenCosts(model: ModelFacts, type: KvCacheType, slots: number) {
  const kv = kvCacheBytesOfType(model, 1, type);
  const transfer = model.headCountKv * Math.max(model.keyLength, model.valueLength) * KV_BYTES_PER_ELEMENT[type];
  return { kv, transfer, total: kv * slots + transfer };
}

/** Tokens per request that fit in `available` bytes, rounded down to the engine's step. */
function fittingContext(available: number, model: ModelFacts, type: KvCacheType, slots: number): number {
  return Math.floor(available / perTokenCosts(model, type, slots).total / CONTEXT_STEP) * CONTEXT_STEP;
}

function checkKvType(config: Config, model: ModelFacts): void {
  if (kvCacheTypeFits(model, config.kvCacheType)) return;
  throw new TaskError(
    `ONEAPP_COPILOT_KV_CACHE_TYPE=${config.kvCacheType} cannot store this model's KV cache ` +
      `(${model.fileName}: heads of ${model.keyLength}/${model.valueLength} values are not whole blocks of 32)`,
    { exitCode: ExitCode.invalidConfig, hint: 'set ONEAPP_COPILOT_KV_CACHE_TYPE=f16' },
  );
}

/** The smaller KV types and the context each would fit, for the clamp warning. */
function smallerTypesHint(available: number, model: ModelFacts, config: Config): string {
  const own = KV_BYTES_PER_ELEMENT[config.kvCacheType];
  const options = KV_CACHE_TYPES.filter((t) => KV_BYTES_PER_ELEMENT[t] < own && kvCacheTypeFits(model, t)).map(
    (t) => `ONEAPP_COPILOT_KV_CACHE_TYPE=${t} would fit ${fittingContext(available, model, t, config.parallelSlots)}`,
  );
  return options.length > 0 ? ` (${options.join(', ')})` : '';
}

/**
 * Decides threads, context and the RAM every consumer gets from the config, the GGUF and the host.
 * Pure. Everything that competes for RAM is counted once: model, KV cache (context × slots, in the
 * operator's KV type), the host prompt cache, the slot-state buffer and the reserve. The context
 * gives way first: clamped (with a warning naming ONEAPP_COPILOT_CONTEXT_SIZE and what the smaller
 * KV types would fit) to the trained context and to RAM; the KV type is never changed; the prompt
 * cache gets what is left. Refuses only when the model alone does not fit (with the minimum context).
 */
export function planEngine(config: Config, model: ModelFacts, host: HostFacts): EnginePlan {
  const warnings: PlanWarning[] = [];
  const { threads, hasAvx2 } = cpuPlan(config, host, warnings);
  checkKvType(config, model);

  const slots = config.parallelSlots;
  const type = config.kvCacheType;
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

  const cost = perTokenCosts(model, type, slots);
  const available = host.memTotalBytes - RESERVED_BYTES - model.bytes;
  if (available < cost.total * MIN_CONTEXT) {
    const needed = model.bytes + RESERVED_BYTES + cost.total * MIN_CONTEXT + 0.5 * GiB;
    throw new TaskError(
      `the model (${model.fileName}, ${gib(model.bytes)}) does not fit in this VM's ` +
        `${gib(host.memTotalBytes)} of RAM with ${slots} slot(s) of ${MIN_CONTEXT} tokens ` +
        `(${type} KV cache) and ${gib(RESERVED_BYTES)} kept for the system`,
      {
        exitCode: ExitCode.environment,
        hint: `give the VM at least ${gib(needed)} of memory, or lower ONEAPP_COPILOT_PARALLEL`,
      },
    );
  }
  const fitting = fittingContext(available, model, type, slots);
  if (fitting < perSlot) {
    warnings.push({
      code: 'context-clamped-ram',
      variable: 'ONEAPP_COPILOT_CONTEXT_SIZE',
      message:
        `ONEAPP_COPILOT_CONTEXT_SIZE=${config.contextSize} × ${slots} slot(s) needs ` +
        `${gib(cost.kv * perSlot * slots)} of ${type} KV cache besides the ${gib(model.bytes)} model, ` +
        `more than this VM's ${gib(host.memTotalBytes)} allows; using ${fitting} tokens per request` +
        smallerTypesHint(available, model, config),
    });
    perSlot = fitting;
  }

  const kvBytes = cost.kv * perSlot * slots;
  const transferBufferBytes = cost.transfer * perSlot;
  const cacheBudget = Math.min(
    available - kvBytes - transferBufferBytes,
    PROMPT_CACHE_CONTEXTS * cost.kv * perSlot,
    PROMPT_CACHE_MAX_MIB * MiB,
  );
  const promptCacheMiB = Math.max(0, Math.floor(cacheBudget / MiB));
  const fileMaxBytes = perSlot * (cost.kv + SLOT_FILE_BYTES_PER_TOKEN) + SLOT_FILE_HEADER_BYTES;
  return {
    threads,
    parallelSlots: slots,
    contextPerSlot: perSlot,
    totalContext: perSlot * slots,
    kvCacheType: type,
    kvBytesPerToken: cost.kv,
    modelBytes: model.bytes,
    kvBytes,
    promptCacheMiB,
    slotState: { transferBufferBytes, fileMaxBytes, diskBytes: fileMaxBytes * slots },
    reservedBytes: RESERVED_BYTES,
    estimatedBytes: model.bytes + kvBytes + promptCacheMiB * MiB + transferBufferBytes + RESERVED_BYTES,
    memTotalBytes: host.memTotalBytes,
    hasAvx2,
    warnings,
  };
}
