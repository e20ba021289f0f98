// Phases "bandwidth" and "generation": the memory read bandwidth (2a), then interleaved rounds of
// llama-bench over every thread count and streamed generation through the endpoint, which give
// figures 1 (gateway ÷ bare engine), 2 (÷ the bandwidth bound) and 5 (thread sweep).
import { existsSync } from 'node:fs';
import { variableByName } from '@slm-copilot/context-schema';
import { measureReadBandwidth, type BandwidthResult } from './bandwidth.js';
import { streamChat, type StreamResult } from './client.js';
import { shortPrompt, type Bed, type BenchRun } from './context.js';
import { kvBenchArgs, ppRate, runLlamaBench, tgRate } from './llama-bench.js';
import { readCounters, windowBetween } from './quiet.js';
import { isLoopback } from './setup.js';
import { fmt, median, round, tps } from './stats.js';

/** Figure 2a, when the bench runs on the engine's machine (else the bandwidth would be this machine's). */
export async function bandwidthFigure(run: BenchRun, bed: Bed): Promise<BandwidthResult | undefined> {
  const { opts, P, log } = run;
  const canBandwidth = bed.testbed || (opts.url !== undefined && isLoopback(opts.url));
  if (!canBandwidth) return undefined;
  run.mark('bandwidth');
  const { threads } = bed;
  const bw = await measureReadBandwidth({ workers: threads, bytesPerWorker: P.bwBytes, passes: P.bwPasses });
  const size = `${threads} × ${bw.bytesPerWorker / 2 ** 20} MiB`;
  log(
    `read bandwidth: best ${fmt(bw.bestGBps, 1)} GB/s, median ${fmt(bw.medianGBps, 1)} GB/s ` +
      `(${threads} workers × ${bw.bytesPerWorker / 2 ** 20} MiB)`,
  );
  run.figures.push({
    n: '2a',
    id: 'read-bandwidth',
    title: `memory read bandwidth (${threads} worker${threads > 1 ? 's' : ''}, memchr scan)`,
    value: round(bw.bestGBps, 2),
    unit: 'GB/s',
    detail: `best of ${bw.passes} passes; median ${fmt(bw.medianGBps, 1)} GB/s; ${size}`,
    data: { ...bw, phase: 'bandwidth' },
  });
  return bw;
}

/** The samples of the generation rounds. */
export interface GenerationSamples {
  /** llama-bench ran (binary and model file here). */
  haveBench: boolean;
  /** llama-bench tg / pp tok/s (depth 0) and the others' CPU, per thread count, one entry per round. */
  tg: Record<number, number[]>;
  pp: Record<number, number[]>;
  tgOthers: Record<number, number[]>;
  /** The server's prompt length in tokens (the depth its generation starts at); 0 = unknown. */
  depth: number;
  /** llama-bench tg at `depth` with the engine's thread count, one per round (empty when depth is 0). */
  tgAtDepth: number[];
  /** The llama-bench flags that give it the engine's KV cache (types, flash attention), and whence. */
  kvArgs: string[];
  kvSource: string;
  /** The streams through the endpoint, one per round. */
  gw: StreamResult[];
  /** Median generation tok/s through the endpoint. */
  gwRate: number;
}

/** llama-bench's KV flags: the rendered engine's, else (a deployed endpoint) the appliance's defaults. */
function kvFlags(bed: Bed): { kvArgs: string[]; kvSource: string } {
  if (bed.engine) return { kvArgs: kvBenchArgs(bed.engine.args), kvSource: "the rendered engine's flags" };
  const type = String(variableByName.get('ONEAPP_COPILOT_KV_CACHE_TYPE')?.default ?? 'f16');
  return {
    kvArgs: ['-ctk', type, '-ctv', type, '-fa', 'on'],
    kvSource: "the appliance's defaults (the deployed engine's flags are not visible from here)",
  };
}

/**
 * llama-bench over every thread count (order flipped each round; the engine's thread count also at
 * the server's prompt depth), then one stream through the endpoint.
 */
export async function generationRounds(run: BenchRun, bed: Bed): Promise<GenerationSamples> {
  const { P, log, monitor } = run;
  run.mark('generation');
  const sweep = Array.from({ length: run.host.logicalCpus }, (_, i) => i + 1);
  if (!sweep.includes(bed.threads)) sweep.push(bed.threads);
  const haveBench = Boolean(bed.llamaBenchBin && bed.modelPath && existsSync(bed.modelPath));
  const depth = bed.shortPromptTokens;
  const s: GenerationSamples = {
    haveBench,
    tg: {},
    pp: {},
    tgOthers: {},
    depth,
    tgAtDepth: [],
    ...kvFlags(bed),
    gw: [],
    gwRate: NaN,
  };
  for (let r = 0; r < P.rounds; r++) {
    const order = r % 2 ? [...sweep].reverse() : sweep;
    if (haveBench) {
      for (const t of order) {
        const c0 = readCounters();
        const deep = t === bed.threads && depth > 0;
        const args = [
          ...['-t', String(t), '-p', String(P.promptTokensBench), '-n', String(P.genTokens), '-r', '1'],
          ...(deep ? ['-d', `0,${depth}`] : []),
          ...s.kvArgs,
        ];
        const b = await runLlamaBench(bed.llamaBenchBin!, bed.modelPath!, args);
        const others = windowBetween(c0, readCounters(), monitor.nCpu).othersCores;
        (s.tg[t] ??= []).push(tgRate(b, t));
        (s.pp[t] ??= []).push(ppRate(b, t));
        (s.tgOthers[t] ??= []).push(round(others, 2));
        if (deep) s.tgAtDepth.push(tgRate(b, t, depth));
        log(
          `  round ${r + 1}: llama-bench -t ${t}: tg ${tps(tgRate(b, t))}` +
            `${deep ? ` (at depth ${depth}: ${tps(tgRate(b, t, depth))})` : ''}, pp ${tps(ppRate(b, t))}; ` +
            `others ${fmt(others)} cores`,
        );
      }
    }
    const g = await streamChat(bed.client, bed.ep.model, shortPrompt(), { maxTokens: P.genTokens });
    s.gw.push(g);
    const says = g.timings?.predicted_per_second ? `; engine says ${tps(g.timings.predicted_per_second)}` : '';
    log(
      `  round ${r + 1}: through the endpoint: ${tps(g.genTokensPerSecond)} ` +
        `(${g.promptTokens} prompt + ${g.completionTokens} tokens, TTFT ${fmt(g.ttftMs, 0)} ms)${says}`,
    );
  }
  s.gwRate = median(s.gw.map((g) => g.genTokensPerSecond));
  return s;
}

/** Figure 1 against llama-bench: at the server's prompt depth (the headline) and at depth 0. */
function gatewayVsBench(run: BenchRun, bed: Bed, s: GenerationSamples): void {
  const { P } = run;
  const { threads, ep } = bed;
  const { gw, gwRate, depth } = s;
  const base0 = median(s.tg[threads]!);
  const engineSays = median(gw.map((g) => g.timings?.predicted_per_second ?? NaN));
  const baseD = median(s.tgAtDepth);
  const equal = Number.isFinite(baseD);
  const bench = `llama-bench -t ${threads} -n ${P.genTokens} ${s.kvArgs.join(' ')}`;
  const atDepth0 = `${tps(base0)} at depth 0 → ${fmt(gwRate / base0)}`;
  run.figures.push({
    n: '1',
    id: 'gateway-vs-llama-bench',
    title: equal
      ? `generation through the gateway ÷ bare llama-bench tg at equal depth (${depth} tokens)`
      : 'generation through the gateway ÷ bare llama-bench tg (depth 0: the prompt length is unknown)',
    value: round(gwRate / (equal ? baseD : base0)),
    unit: '×',
    detail:
      `${tps(gwRate)} (openai client, stream, ${bed.testbed ? 'TLS + key + SSE via nginx' : ep.baseUrl}; ` +
      `after a ${depth || '?'}-token prompt) ÷ ` +
      (equal ? `${tps(baseD)} (${bench} -d ${depth}); ÷ ${atDepth0}` : `${tps(base0)} (${bench})`) +
      (Number.isFinite(engineSays) ? `; llama-server's own count in the same streams: ${tps(engineSays)}` : '') +
      `; KV flags from ${s.kvSource}; medians of ${P.rounds} interleaved rounds`,
    data: {
      gatewayTokS: gw.map((g) => g.genTokensPerSecond),
      engineReportedTokS: gw.map((g) => g.timings?.predicted_per_second ?? null),
      serverPromptTokens: gw.map((g) => g.promptTokens),
      depthTokens: depth,
      llamaBenchTgTokS: s.tg[threads],
      llamaBenchTgAtDepthTokS: s.tgAtDepth,
      ratioAtDepth0: round(gwRate / base0),
      ratioAtEqualDepth: equal ? round(gwRate / baseD) : null,
      llamaBenchKvArgs: s.kvArgs,
      kvSource: s.kvSource,
      threads,
      genTokens: P.genTokens,
      phase: 'generation',
    },
  });
}

/** Figure 1: generation through the gateway ÷ bare llama-bench (or ÷ the engine's own count). */
export function gatewayFigure(run: BenchRun, bed: Bed, s: GenerationSamples): void {
  const { gw, gwRate } = s;
  const engineSays = median(gw.map((g) => g.timings?.predicted_per_second ?? NaN));
  if (s.haveBench) {
    gatewayVsBench(run, bed, s);
  } else if (Number.isFinite(engineSays)) {
    run.figures.push({
      n: '1',
      id: 'gateway-vs-llama-bench',
      title: "generation through the gateway ÷ the engine's own count",
      value: round(gwRate / engineSays),
      unit: '×',
      detail:
        `${tps(gwRate)} at the client ÷ ${tps(engineSays)} (llama-server's timings.predicted_per_second ` +
        'in the same streams, so at the same depth; no llama-bench on this machine)',
      data: {
        gatewayTokS: gw.map((g) => g.genTokensPerSecond),
        engineReportedTokS: gw.map((g) => g.timings?.predicted_per_second ?? null),
        phase: 'generation',
      },
    });
  } else {
    run.skip(
      '1',
      'gateway-vs-llama-bench',
      'generation through the gateway ÷ bare llama-bench tg',
      '×',
      'no llama-bench and model file here, and the engine sends no timings (LocalAI)',
    );
  }
}

/** How generation speed scales from 1 thread to `to` threads, and what that says about the bound. */
export interface DecodeScaling {
  to: number;
  /** tg(to threads) ÷ tg(1 thread). */
  ratio: number;
  /** (ratio − 1) ÷ (to − 1): 1 = every thread adds a full thread's speed, 0 = none. */
  efficiency: number;
  verdict: string;
}

/**
 * Figure 2's verdict from the thread sweep's generation medians (`tg`: threads → tok/s): the bound
 * assumes decode waits on memory, in which case more threads barely help; if decode speeds up with
 * every core, the cores are the limit and the bound is out of reach. `to` = the engine's threads
 * (the most in the sweep when the engine runs one). Null when there is nothing to compare.
 */
export function decodeScaling(tg: Record<number, number>, threads: number): DecodeScaling | null {
  const counts = Object.keys(tg)
    .map(Number)
    .filter((t) => Number.isFinite(tg[t]));
  const to = threads > 1 && counts.includes(threads) ? threads : Math.max(...counts);
  if (!counts.includes(1) || !(to > 1)) return null;
  const ratio = tg[to]! / tg[1]!;
  const efficiency = (ratio - 1) / (to - 1);
  const what = `tg(${to}t)/tg(1t) = ${fmt(ratio)} (${fmt(efficiency * 100, 0)} % of linear)`;
  const verdict =
    ratio < 1
      ? `${what}: slower with more threads (too little work per token to split, as with a tiny model, ` +
        'a busy machine or shared cores): no verdict on what limits decode'
      : efficiency >= 0.6
        ? `${what}: compute-bound — decode speeds up with every core, so ${to} cores cannot draw the ` +
          'bandwidth the bound assumes; the gap to the bound is the cores, not the memory'
        : efficiency <= 0.2
          ? `${what}: memory-bound — more cores barely help; the bandwidth bound is what limits decode`
          : `${what}: partly compute-bound — more cores still help, so the bound is not reached on ${to} cores`;
  return { to, ratio, efficiency, verdict };
}

/** Figure 2: generation ÷ the memory-bandwidth bound (bandwidth ÷ bytes read per token), and what limits it. */
export function bandwidthBoundFigure(run: BenchRun, bed: Bed, s: GenerationSamples, bw?: BandwidthResult): void {
  const { bytesPerToken, bytesSource, threads } = bed;
  if (!bw || !bytesPerToken) {
    run.skip(
      '2',
      'bandwidth-efficiency',
      'generation ÷ memory-bandwidth bound',
      '×',
      !bw
        ? 'the bench does not run on the engine’s machine (bandwidth would be this machine’s)'
        : 'no local GGUF file to read the tensor bytes from (--model)',
    );
    return;
  }
  const { gwRate, haveBench } = s;
  const bound = (bw.bestGBps * 1e9) / bytesPerToken;
  const llamaBenchRatio = haveBench ? median(s.tg[threads]!) / bound : null;
  const tgMedian = Object.fromEntries(Object.entries(s.tg).map(([t, xs]) => [t, median(xs)]));
  const scaling = haveBench ? decodeScaling(tgMedian, threads) : null;
  const perThread = Object.entries(tgMedian)
    .map(([t, v]) => `${t}t ${tps(v)}`)
    .join(', ');
  run.figures.push({
    n: '2',
    id: 'bandwidth-efficiency',
    title: 'generation ÷ memory-bandwidth bound',
    value: round(gwRate / bound),
    unit: '×',
    detail:
      `${tps(gwRate)} ÷ ${tps(bound)} (= ${fmt(bw.bestGBps, 1)} GB/s ÷ ${fmt(bytesPerToken / 1e9, 3)} GB ` +
      `read per token)${haveBench ? `; bare llama-bench: ${fmt(llamaBenchRatio!)}` : ''}` +
      (haveBench ? `; decode by threads (llama-bench tg, depth 0): ${perThread}` : ''),
    verdict: scaling?.verdict ?? 'decode scaling with threads not measured (needs llama-bench and the model here)',
    data: {
      gatewayTokS: gwRate,
      boundTokS: bound,
      bytesPerToken,
      bandwidthGBps: bw.bestGBps,
      llamaBenchRatio,
      bytesSource,
      tgByThreadsTokS: haveBench ? tgMedian : null,
      decodeScaling: scaling,
      phase: 'generation',
    },
  });
}

/** Figure 5: the default thread count ÷ the best one in the llama-bench sweep (OK within 5 %). */
export function threadSweepFigure(run: BenchRun, bed: Bed, s: GenerationSamples): void {
  if (!s.haveBench) {
    run.skip(
      '5',
      'thread-sweep',
      'thread sweep: default ÷ best',
      '×',
      'needs llama-bench and the model file on this machine (--llama-bench, --model)',
    );
    return;
  }
  const { threads } = bed;
  const { tg, pp, tgOthers } = s;
  const med = Object.fromEntries(Object.entries(tg).map(([t, xs]) => [t, median(xs)]));
  const best = Math.max(...Object.values(med));
  const bestT = Number(Object.entries(med).find(([, v]) => v === best)![0]);
  const ratio = med[threads]! / best;
  const ok = ratio >= 0.95;
  // The same verdict from the samples taken while other processes used at most a quarter of the CPUs.
  const quietLimit = 0.25 * run.monitor.nCpu;
  const quietMed = Object.fromEntries(
    Object.entries(tg).map(([t, xs]) => [
      t,
      median(xs.filter((_, i) => (tgOthers[Number(t)]?.[i] ?? Infinity) <= quietLimit)),
    ]),
  );
  const quietAll = Object.values(quietMed).every((v) => Number.isFinite(v));
  const quietBest = quietAll ? Math.max(...Object.values(quietMed)) : NaN;
  const perThread = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([t, v]) => `${t}t ${tps(v)}`)
      .join(', ');
  const quietNote = quietAll
    ? `; on the samples taken while others used ≤ ${fmt(quietLimit)} cores: ${perThread(quietMed)} → ` +
      `default ÷ best ${fmt(quietMed[threads]! / quietBest)}`
    : `; no thread count has a sample taken while others used ≤ ${fmt(quietLimit)} cores`;
  const below = fmt((1 - ratio) * 100, 1);
  run.figures.push({
    n: '5',
    id: 'thread-sweep',
    title: `thread sweep 1..${run.host.logicalCpus}: default (${threads}) ÷ best`,
    value: round(ratio),
    unit: '×',
    verdict: ok
      ? `OK: the default ${threads} thread(s) ` +
        `${bestT === threads ? 'is the best' : `is within ${below} % of the best (${bestT})`}`
      : `NOT OK: the default ${threads} thread(s) is ${below} % below the best (${bestT} threads)`,
    detail:
      `tg ${perThread(med)}; pp ${perThread(Object.fromEntries(Object.entries(pp).map(([t, v]) => [t, median(v)])))}` +
      quietNote,
    data: {
      tgMedian: med,
      tg,
      pp,
      tgOthersCores: tgOthers,
      quietSampleTgMedian: quietAll ? quietMed : null,
      defaultThreads: threads,
      bestThreads: bestT,
      physicalCores: run.host.physicalCores,
      phase: 'generation',
    },
  });
}
