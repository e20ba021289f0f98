// Phase "kv-types": figures 9a–9d. One engine per KV cache type (ONEAPP_COPILOT_KV_CACHE_TYPE, all
// else as rendered), all three running at once. Each first processes one long prompt alone (a
// Cline-like system prompt of P.kvDepth tokens: prefill speed over depths 0…D, from the engine's own
// timings), then generation at that depth is measured in interleaved rounds (the same messages again:
// the prompt comes from the slot's cache, the reply starts at depth D). The KV bytes per token are the
// engine's own (its `llama_kv_cache: size = …` line). Random weights: speed only, never quality.
import { KV_CACHE_TYPES } from '@slm-copilot/model-fetch';
import { freePort } from '@slm-copilot/task-kit';
import { loggedKvCache, type LlamaServer } from '@slm-copilot/testbed';
import { openaiClient, streamChat, type Endpoint } from './client.js';
import { threadOverrides, type Bed, type BenchRun } from './context.js';
import { clineSystemPrompt, newTask } from './conversation.js';
import type { FigureId } from './types.js';
import { fmt, median, nonce, round, tps } from './stats.js';
import { removeRoot, renderApplianceEngine, startEngine, tempRoot, withFlag } from './testbed.js';

type KvType = (typeof KV_CACHE_TYPES)[number];

interface KvEngine {
  type: KvType;
  server: LlamaServer;
  ep: Endpoint;
  root: string;
  bytesPerToken: number;
  cells: number;
}

export interface KvTypeResult {
  type: KvType;
  bytesPerToken: number;
  promptTokens: number;
  prefillTokS: number;
  generationTokS: number[];
}

async function startKvEngine(run: BenchRun, bed: Bed, type: KvType): Promise<KvEngine> {
  const root = await tempRoot();
  const port = await freePort();
  const eng = await renderApplianceEngine({
    root,
    model: bed.modelPath!,
    enginePort: port,
    overrides: { ...threadOverrides(run.opts), ONEAPP_COPILOT_KV_CACHE_TYPE: type },
  });
  // -lv 4: the engine's info lines, its KV cache size among them (the unit runs at the default level)
  const server = await startEngine(bed.llamaServerBin!, withFlag(eng.args, '-lv', '4', ['--verbosity']), port);
  const kv = loggedKvCache(server.output());
  if (kv.typeK !== type || kv.typeV !== type)
    throw new Error(`asked for ${type}, the engine made K ${kv.typeK} V ${kv.typeV}`);
  const bytesPerToken = ((kv.kMiB + kv.vMiB) * 2 ** 20) / kv.cells;
  return {
    type,
    server,
    root,
    ep: { baseUrl: server.baseUrl, key: '', model: eng.config.modelId },
    bytesPerToken,
    cells: kv.cells,
  };
}

/** Measures every type (see the head of this file); engines are stopped and their roots removed. */
async function measureKvTypes(run: BenchRun, bed: Bed): Promise<KvTypeResult[]> {
  const { P, log } = run;
  const engines: KvEngine[] = [];
  try {
    for (const type of KV_CACHE_TYPES) engines.push(await startKvEngine(run, bed, type));
    const system = await clineSystemPrompt(engines[0]!.ep, P.kvDepth, nonce());
    const messages = newTask(system.text, 0);
    const results: KvTypeResult[] = [];
    for (const e of engines) {
      const r = await streamChat(openaiClient(e.ep), e.ep.model, messages, { maxTokens: P.kvGenTokens });
      const prefill = r.timings?.prompt_per_second ?? NaN;
      log(
        `  ${e.type}: ${fmt(e.bytesPerToken / 1024, 1)} KiB/token, prefill ${r.promptTokens} tokens at ${tps(prefill)}`,
      );
      results.push({
        type: e.type,
        bytesPerToken: e.bytesPerToken,
        promptTokens: r.promptTokens,
        prefillTokS: prefill,
        generationTokS: [],
      });
    }
    for (let round = 0; round < P.rounds; round++) {
      for (const [i, e] of engines.entries()) {
        const r = await streamChat(openaiClient(e.ep), e.ep.model, messages, { maxTokens: P.kvGenTokens });
        results[i]!.generationTokS.push(r.timings?.predicted_per_second ?? NaN);
      }
    }
    for (const x of results)
      log(`  ${x.type}: generation at depth ${x.promptTokens}: ${x.generationTokS.map(tps).join(', ')}`);
    return results;
  } finally {
    for (const e of engines) {
      await e.server.stop();
      removeRoot(e.root);
    }
  }
}

const TITLES = {
  prefill: (t: string, d: number) => `KV cache ${t} ÷ f16: prefill of a ${d}-token prompt`,
  generation: (t: string, d: number) => `KV cache ${t} ÷ f16: generation at depth ${d}`,
};

/** Figures 9a–9d: see the head of this file. */
export async function kvTypeFigures(run: BenchRun, bed: Bed): Promise<void> {
  const ids: Array<[n: string, id: FigureId, kind: 'prefill' | 'generation', type: KvType]> = [
    ['9a', 'kv-q8_0-prefill', 'prefill', 'q8_0'],
    ['9b', 'kv-q8_0-generation', 'generation', 'q8_0'],
    ['9c', 'kv-q4_0-prefill', 'prefill', 'q4_0'],
    ['9d', 'kv-q4_0-generation', 'generation', 'q4_0'],
  ];
  if (!(bed.testbed && bed.llamaServerBin && bed.modelPath)) {
    for (const [n, id, kind, type] of ids)
      run.skip(n, id, TITLES[kind](type, run.P.kvDepth), '×', 'starts engines with other KV types: test-bed runs only');
    return;
  }
  run.mark('kv-types');
  const results = await measureKvTypes(run, bed);
  const f16 = results.find((r) => r.type === 'f16')!;
  const kib = (r: KvTypeResult) => `${fmt(r.bytesPerToken / 1024, 1)} KiB/token`;
  for (const [n, id, kind, type] of ids) {
    const x = results.find((r) => r.type === type)!;
    const [a, b] =
      kind === 'prefill' ? [x.prefillTokS, f16.prefillTokS] : [median(x.generationTokS), median(f16.generationTokS)];
    const how =
      kind === 'prefill'
        ? `one ${x.promptTokens}-token prompt each, engines alone in turn (f16, q8_0, q4_0)`
        : `medians of ${run.P.rounds} interleaved rounds of ${run.P.kvGenTokens} tokens after the cached prompt`;
    run.figures.push({
      n,
      id,
      title: TITLES[kind](type, x.promptTokens),
      value: round(a / b),
      unit: '×',
      detail: `${tps(a)} ÷ ${tps(b)} (engine timings; ${how}); KV ${type} ${kib(x)}, f16 ${kib(f16)}`,
      data: { results, phase: 'kv-types' },
    });
  }
}
