// The pure parts of figures 1, 2 and 4c: llama-bench's KV flags from the engine's command line, its
// rows picked by depth, the decode-scaling verdict of figure 2, and the users' order in figure 4c.
import { describe, expect, it } from 'vitest';
import { decodeScaling } from './figures-generation.js';
import { taskOrder } from './figures-tasks.js';
import { kvBenchArgs, tgRate, type LlamaBenchRow, type LlamaBenchRun } from './llama-bench.js';

const row = (over: Partial<LlamaBenchRow>): LlamaBenchRow => ({
  n_threads: 2,
  n_prompt: 0,
  n_gen: 48,
  n_batch: 2048,
  n_ubatch: 512,
  flash_attn: 1,
  model_size: 1,
  avg_ts: 0,
  stddev_ts: 0,
  samples_ts: [],
  ...over,
});

describe('llama-bench KV flags and depth', () => {
  it('takes the cache types and flash attention from a llama-server command line', () => {
    const server = ['--ctx-size', '65536', '--cache-type-k', 'q8_0', '--cache-type-v', 'q4_0', '--flash-attn', 'on'];
    expect(kvBenchArgs(server)).toEqual(['-ctk', 'q8_0', '-ctv', 'q4_0', '-fa', 'on']);
    expect(kvBenchArgs(['-ctk', 'f16', '-fa', 'off'])).toEqual(['-ctk', 'f16', '-fa', 'off']);
    // Flags the server does not set are left to llama-bench's defaults.
    expect(kvBenchArgs(['--threads', '2'])).toEqual([]);
  });

  it('picks the generation row at the asked depth', () => {
    const run: LlamaBenchRun = {
      rows: [row({ avg_ts: 20.4 }), row({ n_depth: 512, avg_ts: 19.2 }), row({ n_prompt: 128, n_gen: 0 })],
      args: [],
      ms: 0,
      stderr: '',
    };
    expect(tgRate(run, 2)).toBe(20.4);
    expect(tgRate(run, 2, 512)).toBe(19.2);
    expect(() => tgRate(run, 2, 2048)).toThrow(/depth 2048/);
  });
});

describe('figure 2: decode scaling with threads', () => {
  it('calls near-linear scaling compute-bound and flat scaling memory-bound', () => {
    const compute = decodeScaling({ 1: 12.3, 2: 20.9 }, 2)!;
    expect(compute.ratio).toBeCloseTo(1.7, 2);
    expect(compute.verdict).toMatch(/^tg\(2t\)\/tg\(1t\) = 1\.70 .*compute-bound/);
    expect(decodeScaling({ 1: 10, 2: 10.5 }, 2)!.verdict).toMatch(/memory-bound/);
    expect(decodeScaling({ 1: 10, 2: 14 }, 2)!.verdict).toMatch(/partly compute-bound/);
    expect(decodeScaling({ 1: 10, 2: 5 }, 2)!.verdict).toMatch(/no verdict/);
  });

  it('compares with the engine’s thread count, or the most threads when the engine runs one', () => {
    expect(decodeScaling({ 1: 10, 2: 18, 3: 24, 4: 30 }, 3)!.to).toBe(3);
    expect(decodeScaling({ 1: 10, 2: 18 }, 1)!.to).toBe(2);
    expect(decodeScaling({ 1: 10 }, 1)).toBeNull();
  });
});

describe('figure 4c: two users alternating', () => {
  it('alternates A and B, each task after the first following the other user', () => {
    expect(taskOrder(3).map((t) => `${t.user}${t.task}`)).toEqual(['A1', 'B1', 'A2', 'B2', 'A3', 'B3']);
  });
});
