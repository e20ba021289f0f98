import { describe, expect, it } from 'vitest';
import { parseContext, variableByName } from '@slm-copilot/context-schema';
import { TaskError } from '@slm-copilot/task-kit';
import { KV_CACHE_TYPES, kvCacheBytes, type KvCacheType } from '@slm-copilot/model-fetch';
import { defaultConfig, devstralFacts, vm16x32 } from '../test-support/fixtures.js';
import {
  planEngine,
  PROMPT_CACHE_MAX_MIB,
  RESERVED_BYTES,
  SLOT_FILE_BYTES_PER_TOKEN,
  SLOT_FILE_HEADER_BYTES,
  type EnginePlan,
} from './plan.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const F16_PER_TOKEN = 163_840; // 40 layers × 8 heads × (128+128) × 2 bytes
const DEFAULT_CONTEXT = variableByName.get('ONEAPP_COPILOT_CONTEXT_SIZE')!.default as number;
const DEFAULT_KV_TYPE = variableByName.get('ONEAPP_COPILOT_KV_CACHE_TYPE')!.default as KvCacheType;
/** The longest agent request to accept at the default context (Claude Code's, ~45 k test tokens). */
const LONG_REQUEST = 48 * 1024;
const vm = (gib: number) => ({ ...vm16x32, memTotalBytes: gib * GiB });
const withType = (type: KvCacheType, env: Record<string, string> = {}) =>
  parseContext({ ONEAPP_COPILOT_KV_CACHE_TYPE: type, ...env });

describe('planEngine', () => {
  it('default config on the recommended VM: physical cores, the default context and KV type, no warnings', () => {
    const plan = planEngine(defaultConfig(), devstralFacts, vm16x32);
    expect(kvCacheBytes(devstralFacts, 1)).toBe(F16_PER_TOKEN);
    expect(DEFAULT_CONTEXT).toBe(65536);
    expect(DEFAULT_KV_TYPE).toBe('f16');
    const kvBytes = F16_PER_TOKEN * 65536; // 10 GiB
    const transfer = 8 * 128 * 2 * 65536; // one layer's K rows of the slot: 128 MiB
    expect(plan).toEqual({
      threads: 8,
      parallelSlots: 1,
      contextPerSlot: 65536,
      totalContext: 65536,
      kvCacheType: 'f16',
      kvBytesPerToken: F16_PER_TOKEN,
      modelBytes: devstralFacts.bytes,
      kvBytes,
      // 2 contexts would be 20 GiB and the 8 GiB cap more than is left: the rest of the 32 GiB.
      promptCacheMiB: Math.floor((32 * GiB - RESERVED_BYTES - devstralFacts.bytes - kvBytes - transfer) / MiB),
      slotState: {
        transferBufferBytes: transfer,
        fileMaxBytes: 65536 * (F16_PER_TOKEN + SLOT_FILE_BYTES_PER_TOKEN) + SLOT_FILE_HEADER_BYTES,
        diskBytes: 65536 * (F16_PER_TOKEN + SLOT_FILE_BYTES_PER_TOKEN) + SLOT_FILE_HEADER_BYTES,
      },
      reservedBytes: RESERVED_BYTES,
      estimatedBytes: expect.any(Number),
      memTotalBytes: 32 * GiB,
      hasAvx2: true,
      warnings: [],
    });
    expect(plan.promptCacheMiB).toBeGreaterThan(6 * 1024); // ~7 GiB of prompt cache left
    expect(plan.estimatedBytes).toBeLessThanOrEqual(32 * GiB);
    expect(32 * GiB - plan.estimatedBytes).toBeLessThan(MiB); // all of it used, nothing counted twice
  });

  it(`the 32 GiB plan holds the real model with a ${LONG_REQUEST}-token request at the default context`, () => {
    const plan = planEngine(defaultConfig(), devstralFacts, vm16x32);
    expect(plan.contextPerSlot).toBeGreaterThanOrEqual(LONG_REQUEST + 1024); // + a reply
    expect(plan.modelBytes + plan.kvBytes + plan.reservedBytes).toBeLessThan(plan.memTotalBytes);
  });

  it('the engine total is the per-request window times the slots', () => {
    const plan = planEngine(
      parseContext({ ONEAPP_COPILOT_PARALLEL: '2', ONEAPP_COPILOT_CONTEXT_SIZE: '16384' }),
      devstralFacts,
      vm16x32,
    );
    expect(plan.contextPerSlot).toBe(16384);
    expect(plan.totalContext).toBe(32768);
    expect(plan.kvBytes).toBe(F16_PER_TOKEN * 32768);
    expect(plan.slotState.diskBytes).toBe(2 * plan.slotState.fileMaxBytes);
  });

  it('counts the KV type: q8_0 is 34/64 and q4_0 18/64 of f16, and leaves more for the prompt cache', () => {
    const byType = Object.fromEntries(
      KV_CACHE_TYPES.map((t) => [t, planEngine(withType(t), devstralFacts, vm16x32)]),
    ) as Record<KvCacheType, EnginePlan>;
    expect(byType.q8_0.kvBytesPerToken).toBe((F16_PER_TOKEN * 34) / 64);
    expect(byType.q4_0.kvBytesPerToken).toBe((F16_PER_TOKEN * 18) / 64);
    for (const t of KV_CACHE_TYPES) {
      expect(byType[t].kvCacheType).toBe(t);
      expect(byType[t].contextPerSlot).toBe(65536);
      expect(byType[t].kvBytes).toBe(byType[t].kvBytesPerToken * 65536);
    }
    expect(byType.q8_0.promptCacheMiB).toBeGreaterThan(byType.f16.promptCacheMiB);
    expect(byType.q8_0.promptCacheMiB).toBe(PROMPT_CACHE_MAX_MIB);
  });

  it('clamps the context to what RAM holds, naming ONEAPP_COPILOT_CONTEXT_SIZE and the smaller KV types', () => {
    const plan = planEngine(parseContext({ ONEAPP_COPILOT_CONTEXT_SIZE: '131072' }), devstralFacts, vm(20));
    const perToken = F16_PER_TOKEN + 8 * 128 * 2; // KV + its share of the slot-state buffer
    const expected = Math.floor((20 * GiB - RESERVED_BYTES - devstralFacts.bytes) / perToken / 256) * 256;
    expect(plan.contextPerSlot).toBe(expected);
    expect(plan.kvCacheType).toBe('f16');
    expect(plan.estimatedBytes).toBeLessThanOrEqual(20 * GiB);
    // The context takes what RAM holds; the prompt cache gets only the rounding remainder.
    expect(plan.promptCacheMiB * MiB).toBeLessThan(256 * perToken);
    expect(plan.warnings).toEqual([
      expect.objectContaining({ code: 'context-clamped-ram', variable: 'ONEAPP_COPILOT_CONTEXT_SIZE' }),
    ]);
    const message = plan.warnings[0]!.message;
    expect(message).toMatch(/^ONEAPP_COPILOT_CONTEXT_SIZE=131072 .* f16 KV cache .* using \d+ tokens per request \(/);
    const fits = [...message.matchAll(/ONEAPP_COPILOT_KV_CACHE_TYPE=(\w+) would fit (\d+)/g)];
    expect(fits.map((m) => m[1])).toEqual(['q8_0', 'q4_0']);
    // each is what the plan gives that type on the same VM
    for (const [, type, tokens] of fits) {
      const other = planEngine(
        withType(type as KvCacheType, { ONEAPP_COPILOT_CONTEXT_SIZE: '131072' }),
        devstralFacts,
        vm(20),
      );
      expect(other.contextPerSlot).toBe(Number(tokens));
    }
  });

  it("never changes the operator's KV type: q4_0 on a small VM clamps the context, nothing smaller to offer", () => {
    const plan = planEngine(withType('q4_0'), devstralFacts, vm(16));
    expect(plan.kvCacheType).toBe('q4_0');
    expect(plan.contextPerSlot).toBeLessThan(65536);
    expect(plan.warnings.map((w) => w.variable)).toEqual(['ONEAPP_COPILOT_CONTEXT_SIZE']);
    expect(plan.warnings[0]!.message).not.toMatch(/KV_CACHE_TYPE/);
  });

  it('refuses a quantized KV type the model cannot store (heads not whole blocks of 32), naming the variable', () => {
    const odd = { ...devstralFacts, keyLength: 80, valueLength: 80 };
    expect(() => planEngine(withType('q8_0'), odd, vm16x32)).toThrow(/ONEAPP_COPILOT_KV_CACHE_TYPE=q8_0 cannot store/);
    expect(planEngine(withType('f16'), odd, vm16x32).kvCacheType).toBe('f16');
  });

  it('clamps to the trained context', () => {
    const small = { ...devstralFacts, contextLength: 8192 };
    const plan = planEngine(defaultConfig(), small, vm16x32);
    expect(plan.contextPerSlot).toBe(8192);
    expect(plan.warnings.map((w) => w.code)).toEqual(['context-clamped-trained']);
  });

  it('refuses when the model alone does not fit, saying how much memory is needed', () => {
    expect(() => planEngine(defaultConfig(), devstralFacts, vm(12))).toThrow(TaskError);
    expect(() => planEngine(defaultConfig(), devstralFacts, vm(12))).toThrow(/does not fit in this VM's 12.0 GiB/);
    // a smaller KV type does not rescue a model that does not fit
    expect(() => planEngine(withType('q4_0'), devstralFacts, vm(12))).toThrow(/does not fit/);
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
      for (const type of KV_CACHE_TYPES) {
        for (const gib of [16, 18, 20, 22, 24, 26, 28, 32, 48, 64]) {
          const plan = planEngine(withType(type), devstralFacts, vm(gib));
          expect(plan.estimatedBytes, `${type}, ${gib} GiB`).toBeLessThanOrEqual(gib * GiB);
          expect(plan.promptCacheMiB).toBeGreaterThanOrEqual(0);
          expect(plan.promptCacheMiB).toBeLessThanOrEqual(PROMPT_CACHE_MAX_MIB);
        }
      }
    });

    it('gets what is left after model + KV + slot-state buffer + reserve on a smaller VM', () => {
      const plan = planEngine(parseContext({ ONEAPP_COPILOT_CONTEXT_SIZE: '32768' }), devstralFacts, vm(24));
      expect(plan.contextPerSlot).toBe(32768);
      expect(plan.promptCacheMiB).toBe(
        Math.floor(
          (24 * GiB - RESERVED_BYTES - devstralFacts.bytes - F16_PER_TOKEN * 32768 - 8 * 128 * 2 * 32768) / MiB,
        ),
      );
      expect(plan.warnings).toEqual([]);
    });

    it('holds at most two full per-request contexts', () => {
      const plan = planEngine(parseContext({ ONEAPP_COPILOT_CONTEXT_SIZE: '8192' }), devstralFacts, vm(64));
      expect(plan.promptCacheMiB).toBe((2 * F16_PER_TOKEN * 8192) / MiB);
    });
  });
});

const fmt = (bytes: number) => (bytes / GiB).toFixed(2).padStart(6);

/** One row of the RAM table: VM, KV type, context, then each consumer in GiB. */
function row(gib: number, plan: EnginePlan): string {
  const cells = [
    `${String(gib).padStart(2)} GiB`,
    plan.kvCacheType.padEnd(4),
    String(plan.contextPerSlot).padStart(6),
    fmt(plan.modelBytes),
    fmt(plan.kvBytes),
    fmt(plan.promptCacheMiB * MiB),
    fmt(plan.slotState.transferBufferBytes),
    fmt(plan.reservedBytes),
    fmt(plan.estimatedBytes),
    fmt(plan.slotState.diskBytes),
    plan.warnings.map((w) => w.variable).join(' ') || '-',
  ];
  return `| ${cells.join(' | ')} |`;
}

describe('the RAM plan for the real model on 16, 32 and 64 GiB VMs (default context and every KV type)', () => {
  const sizes = [16, 32, 64];
  const plans = sizes.flatMap((gib) =>
    KV_CACHE_TYPES.map((type) => ({ gib, type, plan: planEngine(withType(type), devstralFacts, vm(gib)) })),
  );

  it('prints the table; the estimate never exceeds the VM', () => {
    const header =
      '| VM     | KV   | ctx    | model  | KV     | prompt | slot   | reserve| total  | disk   | warning |\n' +
      '|        |      | tokens | GiB    | GiB    | cache  | buffer | GiB    | GiB    | slots  |         |';
    console.log(`Devstral Small 2 Q4_K_M, ONEAPP_COPILOT_CONTEXT_SIZE=${DEFAULT_CONTEXT}, 1 slot\n${header}`);
    console.log(plans.map(({ gib, plan }) => row(gib, plan)).join('\n'));
    for (const { gib, type, plan } of plans) {
      expect(plan.estimatedBytes, `${gib} GiB ${type}`).toBeLessThanOrEqual(gib * GiB);
      expect(plan.kvCacheType).toBe(type);
    }
  });

  it('32 GiB: the default context with the default KV type, no warning', () => {
    const plan = plans.find((p) => p.gib === 32 && p.type === DEFAULT_KV_TYPE)!.plan;
    expect(plan.contextPerSlot).toBe(DEFAULT_CONTEXT);
    expect(plan.warnings).toEqual([]);
  });

  it('64 GiB: the default context with every KV type and a full prompt cache (2 contexts, at most 8 GiB)', () => {
    for (const { plan } of plans.filter((p) => p.gib === 64)) {
      expect(plan.contextPerSlot).toBe(DEFAULT_CONTEXT);
      expect(plan.promptCacheMiB).toBe(Math.min(PROMPT_CACHE_MAX_MIB, (2 * plan.kvBytes) / MiB));
      expect(plan.warnings).toEqual([]);
    }
  });

  it('16 GiB: the context is clamped with a warning naming ONEAPP_COPILOT_CONTEXT_SIZE; the KV type is kept', () => {
    const sixteen = plans.filter((p) => p.gib === 16);
    for (const { type, plan } of sixteen) {
      expect(plan.kvCacheType).toBe(type);
      expect(plan.contextPerSlot).toBeLessThan(DEFAULT_CONTEXT);
      expect(plan.contextPerSlot).toBeGreaterThanOrEqual(2048);
      expect(plan.warnings).toEqual([
        expect.objectContaining({ code: 'context-clamped-ram', variable: 'ONEAPP_COPILOT_CONTEXT_SIZE' }),
      ]);
    }
    // a smaller type holds more context in the same RAM
    const ctx = sixteen.map((p) => p.plan.contextPerSlot);
    expect(ctx[1]).toBeGreaterThan(ctx[0]!);
    expect(ctx[2]).toBeGreaterThan(ctx[1]!);
  });
});
