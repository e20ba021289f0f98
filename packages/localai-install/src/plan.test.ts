import { describe, expect, it } from 'vitest';
import { parseContext } from '@slm-copilot/context-schema';
import { TaskError } from '@slm-copilot/task-kit';
import { defaultConfig, devstralFacts, vm16x32 } from '../test-support/fixtures.js';
import { kvCacheBytes } from '@slm-copilot/model-fetch';
import { planEngine, PROMPT_CACHE_MAX_MIB, RESERVED_BYTES } from './plan.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe('planEngine', () => {
  it('default config on the recommended VM: physical cores, 32k context, 1 slot, no warnings', () => {
    const plan = planEngine(defaultConfig(), devstralFacts, vm16x32);
    expect(kvCacheBytes(devstralFacts, 1)).toBe(163_840); // 40 layers × 8 heads × (128+128) × 2 bytes
    expect(plan).toEqual({
      threads: 8,
      parallelSlots: 1,
      contextPerSlot: 32768,
      totalContext: 32768,
      modelBytes: devstralFacts.bytes,
      kvBytes: 163_840 * 32768,
      // 2 × 5 GiB contexts would be 10 GiB: llama-server's 8 GiB cap applies (and fits in 32 GiB).
      promptCacheMiB: 8192,
      estimatedBytes: devstralFacts.bytes + 163_840 * 32768 + 8192 * MiB + RESERVED_BYTES,
      memTotalBytes: 32 * GiB,
      hasAvx2: true,
      warnings: [],
    });
  });

  it('the engine total is the per-request window times the slots', () => {
    const plan = planEngine(
      parseContext({ ONEAPP_COPILOT_PARALLEL: '2', ONEAPP_COPILOT_CONTEXT_SIZE: '16384' }),
      devstralFacts,
      vm16x32,
    );
    expect(plan.contextPerSlot).toBe(16384);
    expect(plan.totalContext).toBe(32768);
    expect(plan.kvBytes).toBe(163_840 * 32768);
  });

  it('clamps the context to what RAM holds, naming ONEAPP_COPILOT_CONTEXT_SIZE', () => {
    const host = { ...vm16x32, memTotalBytes: 20 * GiB };
    const plan = planEngine(parseContext({ ONEAPP_COPILOT_CONTEXT_SIZE: '131072' }), devstralFacts, host);
    const expected = Math.floor((20 * GiB - RESERVED_BYTES - devstralFacts.bytes) / 163_840 / 256) * 256;
    expect(plan.contextPerSlot).toBe(expected);
    expect(plan.contextPerSlot).toBeLessThan(131072);
    expect(plan.estimatedBytes).toBeLessThanOrEqual(20 * GiB);
    // The context takes what RAM holds; the prompt cache gets only the rounding remainder.
    expect(plan.promptCacheMiB * MiB).toBeLessThan(256 * 163_840);
    expect(plan.warnings).toEqual([
      expect.objectContaining({ code: 'context-clamped-ram', variable: 'ONEAPP_COPILOT_CONTEXT_SIZE' }),
    ]);
    expect(plan.warnings[0]!.message).toMatch(/ONEAPP_COPILOT_CONTEXT_SIZE=131072 .* using \d+ tokens per request/);
  });

  it('clamps to the trained context', () => {
    const small = { ...devstralFacts, contextLength: 8192 };
    const plan = planEngine(defaultConfig(), small, vm16x32);
    expect(plan.contextPerSlot).toBe(8192);
    expect(plan.warnings.map((w) => w.code)).toEqual(['context-clamped-trained']);
  });

  it('refuses when the model alone does not fit, saying how much memory is needed', () => {
    const host = { ...vm16x32, memTotalBytes: 12 * GiB };
    expect(() => planEngine(defaultConfig(), devstralFacts, host)).toThrow(TaskError);
    expect(() => planEngine(defaultConfig(), devstralFacts, host)).toThrow(/does not fit in this VM's 12.0 GiB/);
  });

  it('warns loudly without AVX2 and names host-passthrough', () => {
    const plan = planEngine(defaultConfig(), devstralFacts, { ...vm16x32, cpuFlags: ['sse2', 'avx'] });
    expect(plan.hasAvx2).toBe(false);
    expect(plan.warnings[0]).toMatchObject({ code: 'no-avx2' });
    expect(plan.warnings[0]!.message).toMatch(/host-passthrough/);
  });

  it('explicit threads win; more threads than vCPUs is a warning', () => {
    const plan = planEngine(parseContext({ ONEAPP_COPILOT_THREADS: '32' }), devstralFacts, vm16x32);
    expect(plan.threads).toBe(32);
    expect(plan.warnings).toEqual([
      expect.objectContaining({ code: 'threads-above-cpus', variable: 'ONEAPP_COPILOT_THREADS' }),
    ]);
  });

  describe('prompt cache (--cache-ram / cache_ram)', () => {
    it('is counted in the estimate, which never exceeds the VM', () => {
      for (const gib of [18, 20, 22, 24, 26, 28, 32, 48, 64]) {
        const plan = planEngine(defaultConfig(), devstralFacts, { ...vm16x32, memTotalBytes: gib * GiB });
        expect(plan.estimatedBytes, `${gib} GiB`).toBeLessThanOrEqual(gib * GiB);
        expect(plan.promptCacheMiB).toBeGreaterThanOrEqual(0);
        expect(plan.promptCacheMiB).toBeLessThanOrEqual(PROMPT_CACHE_MAX_MIB);
      }
    });

    it('gets what is left after model + KV + reserve on a smaller VM', () => {
      const host = { ...vm16x32, memTotalBytes: 24 * GiB };
      const plan = planEngine(defaultConfig(), devstralFacts, host);
      expect(plan.contextPerSlot).toBe(32768);
      expect(plan.promptCacheMiB).toBe(
        Math.floor((24 * GiB - RESERVED_BYTES - devstralFacts.bytes - 163_840 * 32768) / MiB),
      );
      expect(plan.warnings).toEqual([]);
    });

    it('holds at most two full per-request contexts', () => {
      const plan = planEngine(parseContext({ ONEAPP_COPILOT_CONTEXT_SIZE: '8192' }), devstralFacts, {
        ...vm16x32,
        memTotalBytes: 64 * GiB,
      });
      expect(plan.promptCacheMiB).toBe((2 * 163_840 * 8192) / MiB);
    });
  });
});
