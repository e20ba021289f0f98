// Test fixtures of localai-install (never shipped): the Devstral GGUF facts, the marketplace VM, the default Config.
import { parseContext } from '@slm-copilot/context-schema';
import type { HostFacts } from '@slm-copilot/task-kit';
import type { ModelFacts } from '../src/model.js';

const GiB = 1024 ** 3;

/** Devstral Small 2 24B Q4_K_M as its GGUF header describes it (40 layers, 8 KV heads of 128). */
export const devstralFacts: ModelFacts = {
  fileName: 'mistralai_Devstral-Small-2-24B-Instruct-2512-Q4_K_M.gguf',
  bytes: 14_333_000_000,
  architecture: 'mistral3',
  contextLength: 393216,
  blockCount: 40,
  headCountKv: 8,
  keyLength: 128,
  valueLength: 128,
};

/** The VM size the marketplace template asks for: 16 vCPU (8 cores × 2 threads), 32 GiB. */
export const vm16x32: HostFacts = {
  cpuFlags: ['fpu', 'sse4_2', 'avx', 'avx2', 'fma', 'f16c'],
  physicalCores: 8,
  logicalCpus: 16,
  cpuModel: 'AMD EPYC (host-passthrough)',
  memTotalBytes: 32 * GiB,
  memAvailableBytes: 30 * GiB,
  hostname: 'copilot',
  ipAddresses: ['192.0.2.10'],
};

export const defaultConfig = () => parseContext({});
