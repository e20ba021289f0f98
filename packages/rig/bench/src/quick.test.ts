// Runs the quick bench for real (tiny model, real llama-server, real nginx + TLS, real wget) and
// checks only that every figure came out as a finite number. No timing is asserted: the figures
// depend on the machine, and CI machines are shared.
import { describe, expect, it } from 'vitest';
import type { LlamaVariant } from '@slm-copilot/testbed';
import { formatTable } from './report.js';
import { runBench, type BenchReport } from './run.js';

const VARIANT = (process.env.SLM_COPILOT_TESTBED_LLAMA_VARIANT ?? 'dispatch') as LlamaVariant;
const REQUIRED = [
  'gateway-vs-llama-bench',
  'bandwidth-efficiency',
  'read-bandwidth',
  'ttft-overhead',
  'prompt-cache-on',
  'prompt-cache-off',
  'cache-new-task',
  'cache-after-restart',
  'kv-q8_0-prefill',
  'kv-q8_0-generation',
  'kv-q4_0-prefill',
  'kv-q4_0-generation',
  'thread-sweep',
  'fetch-vs-wget',
  'dispatch-vs-native',
  'team-cache-affinity',
];

describe('slm-bench --quick on the test bed', () => {
  it('produces every figure as a finite number', async () => {
    const report: BenchReport = await runBench({ quick: true, variant: VARIANT, log: () => {} });
    process.stderr.write(formatTable(report));
    expect(report.figures.map((f) => f.id).sort()).toEqual([...REQUIRED].sort());
    for (const f of report.figures) {
      expect(f.skipped, `figure ${f.n} (${f.id}) skipped`).toBeUndefined();
      expect(Number.isFinite(f.value), `figure ${f.n} (${f.id}) = ${f.value}`).toBe(true);
    }
  });
});
