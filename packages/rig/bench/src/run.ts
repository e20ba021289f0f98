// The benchmark: every figure is a ratio (or a difference) of two measurements taken in this one
// process, interleaved where the machine can drift, with the machine's load recorded alongside.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpus, hostname, release, totalmem } from 'node:os';
import path from 'node:path';
import { gatherHostFacts } from '@slm-copilot/task-kit';
import {
  ensureDevstralShapedModel,
  ensureLlamaBuild,
  ensureTinyModel,
  freePort,
  missingCpuFlags,
  type LlamaServer,
  type LlamaVariant,
} from '@slm-copilot/testbed';
import { measureReadBandwidth, type BandwidthResult } from './bandwidth.js';
import {
  detectEngine,
  firstModel,
  openaiClient,
  postJson,
  rawTtft,
  streamChat,
  type EngineKind,
  type Endpoint,
  type StreamResult,
} from './client.js';
import { clineSystemPrompt, firstTurn, secondTurn } from './conversation.js';
import { dispatchVsNativeFigure } from './dispatch-figure.js';
import { runFetchBench } from './fetch-bench.js';
import { weightBytesPerToken, type WeightBytes } from './gguf-bytes.js';
import { ppRate, runLlamaBench, tgRate } from './llama-bench.js';
import { QuietMonitor, readCounters, windowBetween, type QuietReport } from './quiet.js';
import { median, nonce, round } from './stats.js';
import {
  BENCH_KEY,
  removeRoot,
  renderApplianceEngine,
  startBenchGateway,
  startEngine,
  tempRoot,
  withFlag,
  withoutFlag,
  type ApplianceEngine,
  type BenchGateway,
} from './testbed.js';

export type FigureId =
  | 'gateway-vs-llama-bench'
  | 'bandwidth-efficiency'
  | 'read-bandwidth'
  | 'ttft-overhead'
  | 'prompt-cache-on'
  | 'prompt-cache-off'
  | 'thread-sweep'
  | 'fetch-vs-wget'
  | 'localai-vs-llama-server'
  | 'dispatch-vs-native';

export interface Figure {
  /** "1" … "7" as in the README; "2a" is the bandwidth that figure 2 divides by. */
  n: string;
  id: FigureId;
  title: string;
  /** null when skipped (see `skipped`). */
  value: number | null;
  unit: string;
  /** The two measurements behind the ratio, in words. */
  detail: string;
  verdict?: string;
  skipped?: string;
  /** Other processes' CPU while this figure was measured. */
  load?: { othersCoresMean: number; load1Max: number };
  data: Record<string, unknown>;
}

export interface TuningVariant {
  name: string;
  /** What changes against the rendered command line. */
  change: string;
  /** Variant and rendered baseline measured back to back (engine-reported tokens/s). */
  pairs: Array<{ tg: number; tgBaseline: number; pp: number; ppBaseline: number; othersCores: number }>;
  /** ms from start to /health = 200. */
  loadMs: number;
  error?: string;
}

export interface TuningResult {
  pairs: number;
  genTokens: number;
  promptTokens: number;
  baselineLoadMs: number;
  variants: Array<
    TuningVariant & {
      tgRatio: number;
      ppRatio: number;
      tgMedian: number;
      ppMedian: number;
      othersCoresMean: number;
      note: string;
    }
  >;
}

export interface BenchReport {
  tool: 'slm-bench';
  date: string;
  quick: boolean;
  mode: 'testbed' | 'endpoint';
  durationSeconds: number;
  machine: {
    hostname: string;
    cpuModel: string;
    logicalCpus: number;
    physicalCores: number;
    memTotalGiB: number;
    kernel: string;
    transparentHugepages: string;
    /** Proactive reclaim by the kernel's DAMON (e.g. a cloud's memory overcommit): idle pages are paged out, which makes a resting engine slow on its next request. */
    proactiveReclaim: string;
    avx512: boolean;
  };
  engine: {
    kind: EngineKind;
    detail: string;
    variant?: LlamaVariant;
    threads: number;
    args?: string[];
    forced: boolean;
  };
  endpoint: { url: string; model: string };
  model: { path: string | null; name: string; bytes: number | null; bytesPerToken: number | null; bytesSource: string };
  quiet: QuietReport;
  figures: Figure[];
  tuning?: TuningResult;
  notes: string[];
}

export interface BenchOptions {
  quick?: boolean;
  /** An existing endpoint (the appliance): base URL with or without /v1. */
  url?: string;
  key?: string;
  /** PEM file of the CA to trust (the appliance's ca.crt). */
  ca?: string;
  engine?: 'auto' | 'llama-server' | 'localai';
  /** The engine directly, for the TTFT difference (on the VM: http://127.0.0.1:8080). */
  engineUrl?: string;
  /** A local copy of the GGUF (test bed: instead of the generated model). */
  model?: string;
  llamaServer?: string;
  llamaBench?: string;
  variant?: LlamaVariant;
  /** ONEAPP_COPILOT_THREADS for the render (default 0 = the plan's physical cores). */
  threads?: number;
  fetchSizeMb?: number;
  /** Server-flag variants (default: on in a full test-bed run). */
  tune?: boolean;
  /** Variant/baseline pairs per variant (default 3; 1 with quick). */
  tunePairs?: number;
  /** Test bed: only the flag variants (no figures). */
  tuneOnly?: boolean;
  /** Only these flag variants (names as printed, or their flags), plus the A/A control. */
  tuneVariants?: string[];
  skipFetch?: boolean;
  log?: (msg: string) => void;
}

interface Params {
  genTokens: number;
  rounds: number;
  promptTokensBench: number;
  ttftRounds: number;
  systemTokens: number;
  bwBytes: number;
  bwPasses: number;
  fetchSizeMb: number;
  tunePairs: number;
}

const QUICK: Params = {
  genTokens: 24,
  rounds: 2,
  promptTokensBench: 32,
  ttftRounds: 6,
  systemTokens: 1024,
  bwBytes: 256 * 2 ** 20,
  bwPasses: 4,
  fetchSizeMb: 64,
  tunePairs: 1,
};
const FULL: Params = {
  genTokens: 48,
  rounds: 3,
  promptTokensBench: 128,
  ttftRounds: 30,
  systemTokens: 8192,
  bwBytes: 1024 * 2 ** 20,
  bwPasses: 8,
  fetchSizeMb: 1536,
  tunePairs: 3,
};

const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const tps = (x: number) => `${fmt(x, x < 10 ? 2 : 1)} tok/s`;
const isLoopback = (u: string) => ['localhost', '127.0.0.1', '[::1]', '::1'].includes(new URL(u).hostname);

function machineFacts(host: Awaited<ReturnType<typeof gatherHostFacts>>): BenchReport['machine'] {
  let thp = 'unknown';
  try {
    thp = /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    /* no THP */
  }
  return {
    proactiveReclaim: damonReclaim(),
    hostname: hostname(),
    cpuModel: host.cpuModel,
    logicalCpus: host.logicalCpus,
    physicalCores: host.physicalCores,
    memTotalGiB: round(totalmem() / 2 ** 30, 1),
    kernel: release(),
    transparentHugepages: thp,
    avx512: host.cpuFlags.includes('avx512f'),
  };
}

/** Running DAMON schemes that page memory out (`pageout` after `min age` aggregation intervals), or "none". */
function damonReclaim(): string {
  const root = '/sys/kernel/mm/damon/admin/kdamonds';
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8').trim();
    } catch {
      return '';
    }
  };
  const found: string[] = [];
  for (const k of existsSync(root) ? readdirSync(root).filter((n) => /^\d+$/.test(n)) : []) {
    if (read(`${root}/${k}/state`) !== 'on') continue;
    for (const c of readdirSync(`${root}/${k}/contexts`).filter((n) => /^\d+$/.test(n))) {
      const ctx = `${root}/${k}/contexts/${c}`;
      const aggrUs = Number(read(`${ctx}/monitoring_attrs/intervals/aggr_us`));
      for (const sc of readdirSync(`${ctx}/schemes`).filter((n) => /^\d+$/.test(n))) {
        const action = read(`${ctx}/schemes/${sc}/action`);
        if (action !== 'pageout') continue;
        const minAge = Number(read(`${ctx}/schemes/${sc}/access_pattern/age/min`));
        found.push(
          `DAMON pageout of memory idle ≥ ${Number.isFinite(minAge * aggrUs) ? Math.round((minAge * aggrUs) / 1e6) : '?'} s`,
        );
      }
    }
  }
  return found.length ? found.join('; ') : 'none';
}

/** The appliance's default model file on the VM, if the bench runs there. */
function applianceModel(): string | undefined {
  const dir = '/opt/slm-copilot/models';
  if (!existsSync(dir)) return undefined;
  const f = readdirSync(dir).find((n) => n.endsWith('.gguf'));
  return f ? path.join(dir, f) : undefined;
}

export async function runBench(opts: BenchOptions = {}): Promise<BenchReport> {
  if (opts.tuneOnly) return runTuneOnly(opts);
  const log = opts.log ?? ((m: string) => process.stderr.write(`[bench] ${m}\n`));
  const P = { ...(opts.quick ? QUICK : FULL) };
  if (opts.fetchSizeMb) P.fetchSizeMb = opts.fetchSizeMb;
  const t0 = performance.now();
  const monitor = new QuietMonitor();
  log(`sampling the machine for ${opts.quick ? 2 : 5} s before starting …`);
  const before = await monitor.start(opts.quick ? 2000 : 5000);
  log(
    `before: load ${before.load1.toFixed(2)}, other processes ${before.othersCores.toFixed(2)} of ${monitor.nCpu} cores`,
  );
  const host = await gatherHostFacts();
  const notes: string[] = [];
  const figures: Figure[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  const mark = (phase: string) => {
    monitor.mark(phase);
    log(`— ${phase}`);
  };
  const skip = (n: string, id: FigureId, title: string, unit: string, why: string) => {
    figures.push({ n, id, title, value: null, unit, detail: '', skipped: why, data: {} });
    log(`figure ${n} skipped: ${why}`);
  };

  // ---------------------------------------------------------------- the endpoint and the engine
  mark('setup');
  const testbed = !opts.url;
  let ep: Endpoint;
  let direct: Endpoint | undefined;
  let engine: ApplianceEngine | undefined;
  let server: LlamaServer | undefined;
  let gateway: BenchGateway | undefined;
  let root: string | undefined;
  let llamaServerBin = opts.llamaServer;
  let llamaBenchBin = opts.llamaBench;
  let modelPath = opts.model;
  let modelSha: string | undefined;
  let variant: LlamaVariant | undefined;
  let threads: number;
  let kind: EngineKind;
  let kindDetail: string;
  const forced = opts.engine !== undefined && opts.engine !== 'auto';

  try {
    if (testbed) {
      variant = opts.variant ?? ((await missingCpuFlags('host')).length === 0 ? 'host' : 'dispatch');
      const llama = await ensureLlamaBuild({ variant, log: (m) => log(m) });
      llamaServerBin ??= llama.llamaServer;
      llamaBenchBin ??= llama.llamaBench;
      if (!modelPath) {
        const m = opts.quick
          ? await ensureTinyModel({ llama, log: (s) => log(s) })
          : await ensureDevstralShapedModel({ llama, log: (s) => log(s) });
        modelPath = m.path;
        modelSha = m.sha256;
      }
      root = await tempRoot();
      const enginePort = await freePort();
      engine = await renderApplianceEngine({
        root,
        model: modelPath,
        sha256: modelSha,
        enginePort,
        overrides: opts.threads !== undefined ? { ONEAPP_COPILOT_THREADS: String(opts.threads) } : {},
      });
      threads = engine.plan.threads;
      log(`engine (as rendered): llama-server ${engine.args.join(' ')}`);
      server = await startEngine(llamaServerBin, engine.args, enginePort);
      cleanups.push(() => server!.stop());
      gateway = await startBenchGateway({ root, enginePort, paths: engine.paths });
      cleanups.push(() => gateway!.stop());
      ep = {
        baseUrl: gateway.baseUrl,
        key: BENCH_KEY,
        ca: gateway.caPem,
        resolveTo: '127.0.0.1',
        model: engine.config.modelId,
      };
      direct = { baseUrl: server.baseUrl, key: '', model: engine.config.modelId };
      log(`gateway ${gateway.baseUrl} (TLS with the generated CA ${gateway.caFile}) → llama-server ${server.baseUrl}`);
    } else {
      const url = opts.url!.replace(/\/+$/, '').replace(/\/v1$/, '');
      if (!opts.key) throw new Error('--url needs --key');
      ep = { baseUrl: url, key: opts.key, ca: opts.ca ? await readFile(opts.ca, 'utf8') : undefined, model: '' };
      const m = await firstModel(ep);
      if (!m) throw new Error(`${url}/v1/models did not answer with a model (wrong key, CA or URL?)`);
      ep.model = m.id;
      threads = opts.threads && opts.threads > 0 ? opts.threads : host.physicalCores;
      const onVm = isLoopback(url);
      modelPath ??= onVm ? applianceModel() : undefined;
      if (onVm) {
        llamaServerBin ??= existsSync('/opt/llama.cpp/bin/llama-server')
          ? '/opt/llama.cpp/bin/llama-server'
          : undefined;
        llamaBenchBin ??= existsSync('/opt/llama.cpp/bin/llama-bench') ? '/opt/llama.cpp/bin/llama-bench' : undefined;
      }
      const eu = opts.engineUrl ?? (onVm ? 'http://127.0.0.1:8080' : undefined);
      if (eu) direct = { baseUrl: eu.replace(/\/+$/, ''), key: '', model: ep.model };
      notes.push(
        `endpoint mode: figures that need the engine directly use only SSH-free means — a local model file, llama-bench and the engine's port when the bench runs on the VM itself (${onVm ? 'it does' : 'it does not'}), else the engine's own timings sent in the stream; anything else is skipped and says why`,
      );
    }
    const detected = await detectEngine(ep);
    kind = forced ? (opts.engine as EngineKind) : detected.kind;
    kindDetail = forced
      ? `${opts.engine} (forced by --engine; the endpoint says: ${detected.detail})`
      : detected.detail;
    log(`engine behind the endpoint: ${kindDetail}`);

    // Model bytes read per generated token.
    let wb: WeightBytes | undefined;
    let bytesPerToken: number | null = null;
    let bytesSource = 'unknown';
    if (modelPath && existsSync(modelPath)) {
      wb = await weightBytesPerToken(modelPath);
      bytesPerToken = wb.bytesPerToken;
      bytesSource = `GGUF tensor table of ${path.basename(modelPath)}: ${fmt(wb.tensorBytes / 1e9, 3)} GB of tensors${wb.tiedOutput ? ' (output tied to the embeddings: all read per token)' : `, minus the ${fmt(wb.tokenEmbeddingBytes / 1e9, 3)} GB token-embedding matrix (one row read per token)`}`;
    }
    const client = openaiClient(ep);
    const shortPrompt = () => [
      { role: 'user' as const, content: `Write a long story about a lighthouse keeper. (${nonce()})` },
    ];
    log('warm-up request through the endpoint …');
    await streamChat(client, ep.model, shortPrompt(), { maxTokens: 4 });

    // ---------------------------------------------------------------- 2a: read bandwidth
    let bw: BandwidthResult | undefined;
    const canBandwidth = testbed || (opts.url !== undefined && isLoopback(opts.url));
    if (canBandwidth) {
      mark('bandwidth');
      bw = await measureReadBandwidth({ workers: threads, bytesPerWorker: P.bwBytes, passes: P.bwPasses });
      log(
        `read bandwidth: best ${fmt(bw.bestGBps, 1)} GB/s, median ${fmt(bw.medianGBps, 1)} GB/s (${threads} workers × ${bw.bytesPerWorker / 2 ** 20} MiB)`,
      );
      figures.push({
        n: '2a',
        id: 'read-bandwidth',
        title: `memory read bandwidth (${threads} worker${threads > 1 ? 's' : ''}, memchr scan)`,
        value: round(bw.bestGBps, 2),
        unit: 'GB/s',
        detail: `best of ${bw.passes} passes; median ${fmt(bw.medianGBps, 1)} GB/s; ${threads} × ${bw.bytesPerWorker / 2 ** 20} MiB`,
        data: { ...bw, phase: 'bandwidth' },
      });
    }

    // ---------------------------------------------------------------- 1, 2, 5: generation rounds
    mark('generation');
    const sweep = Array.from({ length: host.logicalCpus }, (_, i) => i + 1);
    if (!sweep.includes(threads)) sweep.push(threads);
    const haveBench = Boolean(llamaBenchBin && modelPath && existsSync(modelPath));
    const tg: Record<number, number[]> = {};
    const pp: Record<number, number[]> = {};
    const tgOthers: Record<number, number[]> = {};
    const gw: StreamResult[] = [];
    for (let r = 0; r < P.rounds; r++) {
      const order = r % 2 ? [...sweep].reverse() : sweep;
      if (haveBench) {
        for (const t of order) {
          const c0 = readCounters();
          const run = await runLlamaBench(llamaBenchBin!, modelPath!, [
            '-t',
            String(t),
            '-p',
            String(P.promptTokensBench),
            '-n',
            String(P.genTokens),
            '-r',
            '1',
          ]);
          const others = windowBetween(c0, readCounters(), monitor.nCpu).othersCores;
          (tg[t] ??= []).push(tgRate(run, t));
          (pp[t] ??= []).push(ppRate(run, t));
          (tgOthers[t] ??= []).push(round(others, 2));
          log(
            `  round ${r + 1}: llama-bench -t ${t}: tg ${tps(tgRate(run, t))}, pp ${tps(ppRate(run, t))}; others ${fmt(others)} cores`,
          );
        }
      }
      const s = await streamChat(client, ep.model, shortPrompt(), { maxTokens: P.genTokens });
      gw.push(s);
      log(
        `  round ${r + 1}: through the endpoint: ${tps(s.genTokensPerSecond)} (${s.completionTokens} tokens, TTFT ${fmt(s.ttftMs, 0)} ms)${s.timings?.predicted_per_second ? `; engine says ${tps(s.timings.predicted_per_second)}` : ''}`,
      );
    }
    const gwRate = median(gw.map((s) => s.genTokensPerSecond));
    const engineSays = median(gw.map((s) => s.timings?.predicted_per_second ?? NaN));
    if (haveBench) {
      const base = median(tg[threads]!);
      figures.push({
        n: '1',
        id: 'gateway-vs-llama-bench',
        title: 'generation through the gateway ÷ bare llama-bench tg',
        value: round(gwRate / base),
        unit: '×',
        detail: `${tps(gwRate)} (openai client, stream, ${testbed ? 'TLS + key + SSE via nginx' : ep.baseUrl}) ÷ ${tps(base)} (llama-bench -t ${threads} -n ${P.genTokens}); medians of ${P.rounds} interleaved rounds`,
        data: {
          gatewayTokS: gw.map((s) => s.genTokensPerSecond),
          engineReportedTokS: gw.map((s) => s.timings?.predicted_per_second ?? null),
          llamaBenchTgTokS: tg[threads],
          threads,
          genTokens: P.genTokens,
          phase: 'generation',
        },
      });
    } else if (Number.isFinite(engineSays)) {
      figures.push({
        n: '1',
        id: 'gateway-vs-llama-bench',
        title: "generation through the gateway ÷ the engine's own count",
        value: round(gwRate / engineSays),
        unit: '×',
        detail: `${tps(gwRate)} at the client ÷ ${tps(engineSays)} (llama-server's timings.predicted_per_second in the same streams; no llama-bench on this machine)`,
        data: {
          gatewayTokS: gw.map((s) => s.genTokensPerSecond),
          engineReportedTokS: gw.map((s) => s.timings?.predicted_per_second ?? null),
          phase: 'generation',
        },
      });
    } else {
      skip(
        '1',
        'gateway-vs-llama-bench',
        'generation through the gateway ÷ bare llama-bench tg',
        '×',
        'no llama-bench and model file here, and the engine sends no timings (LocalAI)',
      );
    }

    if (bw && bytesPerToken) {
      const bound = (bw.bestGBps * 1e9) / bytesPerToken;
      figures.push({
        n: '2',
        id: 'bandwidth-efficiency',
        title: 'generation ÷ memory-bandwidth bound',
        value: round(gwRate / bound),
        unit: '×',
        detail: `${tps(gwRate)} ÷ ${tps(bound)} (= ${fmt(bw.bestGBps, 1)} GB/s ÷ ${fmt(bytesPerToken / 1e9, 3)} GB read per token)${haveBench ? `; bare llama-bench: ${fmt(median(tg[threads]!) / bound)}` : ''}`,
        data: {
          gatewayTokS: gwRate,
          boundTokS: bound,
          bytesPerToken,
          bandwidthGBps: bw.bestGBps,
          llamaBenchRatio: haveBench ? median(tg[threads]!) / bound : null,
          bytesSource,
          phase: 'generation',
        },
      });
    } else {
      skip(
        '2',
        'bandwidth-efficiency',
        'generation ÷ memory-bandwidth bound',
        '×',
        !bw
          ? 'the bench does not run on the engine’s machine (bandwidth would be this machine’s)'
          : 'no local GGUF file to read the tensor bytes from (--model)',
      );
    }

    if (haveBench) {
      const med = Object.fromEntries(Object.entries(tg).map(([t, xs]) => [t, median(xs)]));
      const best = Math.max(...Object.values(med));
      const bestT = Number(Object.entries(med).find(([, v]) => v === best)![0]);
      const ours = med[threads]!;
      const ratio = ours / best;
      const ok = ratio >= 0.95;
      // The same verdict from the samples taken while other processes used at most a quarter of the CPUs.
      const quietLimit = 0.25 * monitor.nCpu;
      const quietMed = Object.fromEntries(
        Object.entries(tg).map(([t, xs]) => [
          t,
          median(xs.filter((_, i) => (tgOthers[Number(t)]?.[i] ?? Infinity) <= quietLimit)),
        ]),
      );
      const quietAll = Object.values(quietMed).every((v) => Number.isFinite(v));
      const quietBest = quietAll ? Math.max(...Object.values(quietMed)) : NaN;
      const quietNote = quietAll
        ? `; on the samples taken while others used ≤ ${fmt(quietLimit)} cores: ${Object.entries(quietMed)
            .map(([t, v]) => `${t}t ${tps(v)}`)
            .join(', ')} → default ÷ best ${fmt(quietMed[threads]! / quietBest)}`
        : `; no thread count has a sample taken while others used ≤ ${fmt(quietLimit)} cores`;
      figures.push({
        n: '5',
        id: 'thread-sweep',
        title: `thread sweep 1..${host.logicalCpus}: default (${threads}) ÷ best`,
        value: round(ratio),
        unit: '×',
        verdict: ok
          ? `OK: the default ${threads} thread(s) ${bestT === threads ? 'is the best' : `is within ${fmt((1 - ratio) * 100, 1)} % of the best (${bestT})`}`
          : `NOT OK: the default ${threads} thread(s) is ${fmt((1 - ratio) * 100, 1)} % below the best (${bestT} threads)`,
        detail: `tg ${Object.entries(med)
          .map(([t, v]) => `${t}t ${tps(v)}`)
          .join(', ')}; pp ${Object.entries(pp)
          .map(([t, v]) => `${t}t ${tps(median(v))}`)
          .join(', ')}${quietNote}`,
        data: {
          tgMedian: med,
          tg,
          pp,
          tgOthersCores: tgOthers,
          quietSampleTgMedian: quietAll ? quietMed : null,
          defaultThreads: threads,
          bestThreads: bestT,
          physicalCores: host.physicalCores,
          phase: 'generation',
        },
      });
    } else {
      skip(
        '5',
        'thread-sweep',
        'thread sweep: default ÷ best',
        '×',
        'needs llama-bench and the model file on this machine (--llama-bench, --model)',
      );
    }

    // ---------------------------------------------------------------- 3: TTFT overhead
    if (direct) {
      mark('ttft');
      const body = JSON.stringify({
        model: ep.model,
        messages: [{ role: 'user', content: 'Write one word.' }],
        max_tokens: 2,
        stream: true,
      });
      const d: number[] = [];
      const g: number[] = [];
      try {
        for (let i = 0; i < 2; i++) {
          await rawTtft(direct, body);
          await rawTtft(ep, body);
        }
        for (let i = 0; i < P.ttftRounds; i++) {
          // alternate the order so neither path always runs second
          if (i % 2) {
            d.push(await rawTtft(direct, body));
            g.push(await rawTtft(ep, body));
          } else {
            g.push(await rawTtft(ep, body));
            d.push(await rawTtft(direct, body));
          }
        }
        const diff = median(g) - median(d);
        // Headline: the median of the N paired differences (each pair is measured back to back, so
        // the machine's drift cancels); the difference of the two medians is shown beside it.
        const paired = median(g.map((x, i) => x - d[i]!));
        figures.push({
          n: '3',
          id: 'ttft-overhead',
          title: 'TTFT through the gateway minus direct to the engine',
          value: round(paired, 2),
          unit: 'ms',
          detail: `median of ${P.ttftRounds} paired differences, alternating order: HTTPS through nginx (fresh TCP + TLS each) − HTTP to the engine (fresh TCP); medians ${fmt(median(g), 1)} ms − ${fmt(median(d), 1)} ms = ${fmt(diff, 2)} ms; ratio ${fmt(median(g) / median(d), 3)}`,
          data: { gatewayMs: g, directMs: d, pairedMedianMs: paired, ratio: median(g) / median(d), phase: 'ttft' },
        });
      } catch (e) {
        skip(
          '3',
          'ttft-overhead',
          'TTFT through the gateway minus direct',
          'ms',
          `the engine at ${direct.baseUrl} did not answer: ${(e as Error).message}`,
        );
      }
    } else {
      skip(
        '3',
        'ttft-overhead',
        'TTFT through the gateway minus direct',
        'ms',
        'the engine’s own port is not reachable from here (give --engine-url when running on the VM)',
      );
    }

    // ---------------------------------------------------------------- 4: prompt cache
    mark('prompt-cache');
    const conversation = async (label: string, extra?: Record<string, unknown>) => {
      const sys = await clineSystemPrompt(direct ?? ep, P.systemTokens, nonce());
      const t1msgs = firstTurn(sys.text);
      const t1 = await streamChat(client, ep.model, t1msgs, { maxTokens: 12, extra });
      const t2 = await streamChat(client, ep.model, secondTurn(t1msgs, t1.text), { maxTokens: 4, extra });
      log(
        `  ${label}: turn 1 TTFT ${fmt(t1.ttftMs, 0)} ms (${t1.promptTokens} prompt tokens), turn 2 TTFT ${fmt(t2.ttftMs, 0)} ms (${t2.promptTokens} prompt tokens, ${t2.cachedTokens ?? '?'} cached)`,
      );
      return { t1, t2, ratio: t2.ttftMs / t1.ttftMs, systemTokens: sys.tokens };
    };
    const on = await conversation('appliance settings (cache on)');
    figures.push({
      n: '4a',
      id: 'prompt-cache-on',
      title: `prompt cache on (as rendered): turn-2 TTFT ÷ turn-1 TTFT`,
      value: round(on.ratio),
      unit: '×',
      detail: `${fmt(on.t2.ttftMs, 0)} ms (${on.t2.promptTokens} tokens, ${on.t2.cachedTokens ?? '?'} cached) ÷ ${fmt(on.t1.ttftMs, 0)} ms (${on.t1.promptTokens} tokens; system prompt ${on.systemTokens ?? '≈' + P.systemTokens} tokens)`,
      data: { turn1: strip(on.t1), turn2: strip(on.t2), systemTokens: on.systemTokens, phase: 'prompt-cache' },
    });
    let off: Awaited<ReturnType<typeof conversation>> | undefined;
    let offHow = '';
    if (testbed && engine && server) {
      // Restart the engine with caching disabled: the rendered command line with --no-cache-prompt.
      await server.stop();
      const args = [...withoutFlag(engine.args, '--cache-prompt'), '--no-cache-prompt'];
      server = await startEngine(llamaServerBin!, args, engine.paths.engine.port);
      offHow = 'engine restarted with --no-cache-prompt';
      off = await conversation('caching disabled (--no-cache-prompt)');
    } else if (kind === 'llama-server') {
      offHow = 'cache_prompt:false in each request';
      off = await conversation('caching disabled (cache_prompt:false)', { cache_prompt: false });
    }
    if (off) {
      figures.push({
        n: '4b',
        id: 'prompt-cache-off',
        title: `prompt cache off: turn-2 TTFT ÷ turn-1 TTFT`,
        value: round(off.ratio),
        unit: '×',
        detail: `${fmt(off.t2.ttftMs, 0)} ms ÷ ${fmt(off.t1.ttftMs, 0)} ms (${offHow}); the cache makes turn 2 ${fmt(off.t2.ttftMs / on.t2.ttftMs, 1)}× faster`,
        data: {
          turn1: strip(off.t1),
          turn2: strip(off.t2),
          how: offHow,
          cacheSpeedupTurn2: off.t2.ttftMs / on.t2.ttftMs,
          phase: 'prompt-cache',
        },
      });
    } else {
      skip(
        '4b',
        'prompt-cache-off',
        'prompt cache off: turn-2 ÷ turn-1 TTFT',
        '×',
        'LocalAI has no per-request switch for its prompt cache and the bench does not restart a remote engine',
      );
    }

    // ---------------------------------------------------------------- 7: LocalAI vs llama-server on the same VM
    if (kind === 'localai') {
      mark('localai-vs-llama-server');
      if (llamaServerBin && modelPath && existsSync(modelPath)) {
        const cmpRoot = await tempRoot();
        try {
          const port = await freePort();
          const cmp = await renderApplianceEngine({
            root: cmpRoot,
            model: modelPath,
            enginePort: port,
            overrides: opts.threads !== undefined ? { ONEAPP_COPILOT_THREADS: String(opts.threads) } : {},
          });
          const ls = await startEngine(llamaServerBin, cmp.args, port);
          try {
            const lsEp: Endpoint = { baseUrl: ls.baseUrl, key: '', model: cmp.config.modelId };
            const lsClient = openaiClient(lsEp);
            await streamChat(lsClient, lsEp.model, shortPrompt(), { maxTokens: 4 });
            const a: number[] = [];
            const b: number[] = [];
            for (let r = 0; r < P.rounds; r++) {
              a.push(
                (await streamChat(client, ep.model, shortPrompt(), { maxTokens: P.genTokens })).genTokensPerSecond,
              );
              b.push(
                (await streamChat(lsClient, lsEp.model, shortPrompt(), { maxTokens: P.genTokens })).genTokensPerSecond,
              );
            }
            figures.push({
              n: '7',
              id: 'localai-vs-llama-server',
              title: 'LocalAI through the gateway ÷ llama-server (same model, threads) on this machine',
              value: round(median(a) / median(b)),
              unit: '×',
              detail: `${tps(median(a))} ÷ ${tps(median(b))} (llama-server started by the bench with the appliance's rendered flags, direct HTTP)`,
              data: { localaiTokS: a, llamaServerTokS: b, llamaServerArgs: cmp.args, phase: 'localai-vs-llama-server' },
            });
          } finally {
            await ls.stop();
          }
        } finally {
          removeRoot(cmpRoot);
        }
      } else {
        skip(
          '7',
          'localai-vs-llama-server',
          'LocalAI ÷ llama-server on the same machine',
          '×',
          'needs a llama-server binary (--llama-server) and the model file (--model) on this machine',
        );
      }
    }

    // Main engine and gateway are no longer needed.
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});

    // ---------------------------------------------------------------- 8: shipped dispatching build ÷ host-native build
    const f8 = ['8', 'dispatch-vs-native', 'prompt tok/s: dispatching build ÷ host-native build', '×'] as const;
    if (testbed && modelPath) {
      mark('dispatch-vs-native');
      await dispatchVsNativeFigure({ model: modelPath, threads, quick: !!opts.quick, log })
        .then((f) => figures.push(f))
        .catch((e: Error) => skip(...f8, e.message.split('\n')[0]!));
    } else skip(...f8, 'compares two builds made on this machine: test-bed runs only');

    // ---------------------------------------------------------------- tuning: server flag variants
    let tuning: TuningResult | undefined;
    if ((opts.tune ?? (!opts.quick && testbed)) && testbed && engine && llamaServerBin) {
      mark('tuning');
      tuning = await tuneEngine({
        binary: llamaServerBin,
        engine,
        pairs: opts.tunePairs ?? P.tunePairs,
        genTokens: opts.quick ? 16 : 32,
        promptTokens: opts.quick ? 64 : 192,
        nCpu: monitor.nCpu,
        only: opts.tuneVariants,
        log,
      });
    }

    // ---------------------------------------------------------------- 6: model-fetch vs wget
    if (!opts.skipFetch) {
      mark('fetch');
      try {
        const f = await runFetchBench({ sizeMb: P.fetchSizeMb, log: (m) => log(m) });
        figures.push({
          n: '6',
          id: 'fetch-vs-wget',
          title: `model-fetch ÷ wget -c + sha256sum (${P.fetchSizeMb} MiB, local mirror)`,
          value: round(f.ratio),
          unit: '×',
          detail: `fetchModel ${fmt(f.fetchModelMs / 1000, 1)} s (download + streamed SHA-256 + install) ÷ ${fmt(f.wgetThenSha256sumMs / 1000, 1)} s (wget -c, then sha256sum); model-fetch's bench/fetch-vs-wget.ts${testbed ? '' : ', run on this machine'}`,
          data: { ...f, output: undefined, phase: 'fetch' },
        });
      } catch (e) {
        skip('6', 'fetch-vs-wget', 'model-fetch ÷ wget -c + sha256sum', '×', (e as Error).message.split('\n')[0]!);
      }
    } else {
      skip('6', 'fetch-vs-wget', 'model-fetch ÷ wget -c + sha256sum', '×', '--skip-fetch');
    }

    const quiet = monitor.stop();
    for (const f of figures) {
      const phase = f.data.phase as string | undefined;
      const p = quiet.phases.find((x) => x.phase === phase);
      if (p) f.load = { othersCoresMean: round(p.othersCoresMean, 2), load1Max: round(p.load1Max, 2) };
      if (
        f.id === 'thread-sweep' &&
        f.verdict?.startsWith('NOT OK') &&
        p &&
        p.othersCoresMean > quiet.thresholds.othersCoresMean
      ) {
        f.verdict += ` — measured while other processes used ${fmt(p.othersCoresMean)} of ${quiet.cpus} cores, which hurts the larger thread counts most; repeat on a quiet machine before acting on it`;
      }
    }
    figures.sort((a, b) => a.n.localeCompare(b.n, 'en', { numeric: true }));
    if (!quiet.quiet) notes.push(quiet.verdict);
    if (opts.engine === 'localai' && testbed)
      notes.push(
        '--engine localai on the test bed: the endpoint is really llama-server; this only exercises the LocalAI code path (LocalAI cannot run on this machine)',
      );
    return {
      tool: 'slm-bench',
      date: new Date().toISOString(),
      quick: Boolean(opts.quick),
      mode: testbed ? 'testbed' : 'endpoint',
      durationSeconds: round((performance.now() - t0) / 1000, 1),
      machine: machineFacts(host),
      engine: { kind, detail: kindDetail, variant, threads, args: engine?.args, forced },
      endpoint: { url: ep.baseUrl, model: ep.model },
      model: {
        path: modelPath ?? null,
        name: modelPath ? path.basename(modelPath) : ep.model,
        bytes: wb?.fileBytes ?? null,
        bytesPerToken,
        bytesSource,
      },
      quiet,
      figures,
      tuning,
      notes,
    };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    if (root) removeRoot(root);
    monitor.stop();
  }
}

/** `--tune-only`: the test bed's rendered engine and the flag variants, no figures. */
async function runTuneOnly(opts: BenchOptions): Promise<BenchReport> {
  if (opts.url) throw new Error('--tune-only works on the test bed only (it restarts the engine with other flags)');
  const log = opts.log ?? ((m: string) => process.stderr.write(`[bench] ${m}\n`));
  const t0 = performance.now();
  const monitor = new QuietMonitor();
  await monitor.start(opts.quick ? 2000 : 5000);
  const host = await gatherHostFacts();
  const variant = opts.variant ?? ((await missingCpuFlags('host')).length === 0 ? 'host' : 'dispatch');
  const llama = await ensureLlamaBuild({ variant, log: (m) => log(m) });
  let modelPath = opts.model;
  let sha: string | undefined;
  if (!modelPath) {
    const m = opts.quick
      ? await ensureTinyModel({ llama, log: (x) => log(x) })
      : await ensureDevstralShapedModel({ llama, log: (x) => log(x) });
    modelPath = m.path;
    sha = m.sha256;
  }
  const root = await tempRoot();
  try {
    const engine = await renderApplianceEngine({
      root,
      model: modelPath,
      sha256: sha,
      enginePort: await freePort(),
      overrides: opts.threads !== undefined ? { ONEAPP_COPILOT_THREADS: String(opts.threads) } : {},
    });
    log(`engine (as rendered): llama-server ${engine.args.join(' ')}`);
    monitor.mark('tuning');
    const tuning = await tuneEngine({
      binary: opts.llamaServer ?? llama.llamaServer,
      engine,
      pairs: opts.tunePairs ?? (opts.quick ? QUICK : FULL).tunePairs,
      genTokens: opts.quick ? 16 : 32,
      promptTokens: opts.quick ? 64 : 192,
      nCpu: monitor.nCpu,
      only: opts.tuneVariants,
      log,
    });
    const quiet = monitor.stop();
    const wb = await weightBytesPerToken(modelPath);
    return {
      tool: 'slm-bench',
      date: new Date().toISOString(),
      quick: Boolean(opts.quick),
      mode: 'testbed',
      durationSeconds: round((performance.now() - t0) / 1000, 1),
      machine: machineFacts(host),
      engine: {
        kind: 'llama-server',
        detail: `llama-server (${llama.release})`,
        variant,
        threads: engine.plan.threads,
        args: engine.args,
        forced: false,
      },
      endpoint: { url: '(none: --tune-only)', model: engine.config.modelId },
      model: {
        path: modelPath,
        name: path.basename(modelPath),
        bytes: wb.fileBytes,
        bytesPerToken: wb.bytesPerToken,
        bytesSource: 'GGUF tensor table',
      },
      quiet,
      figures: [],
      tuning,
      notes: quiet.quiet ? [] : [quiet.verdict],
    };
  } finally {
    removeRoot(root);
    monitor.stop();
  }
}

function strip(s: StreamResult) {
  const { text: _text, ...rest } = s;
  return rest;
}

/**
 * Server-flag variants against the rendered command line. The rendered baseline server stays up the
 * whole time; each variant runs beside it, and requests alternate between the two (order flipped
 * every pair), so each variant/baseline pair is measured seconds apart and the paired ratio cancels
 * the machine's drift. Speeds are the engine's own timings (/completion, cache_prompt:false); the
 * variant's start is timed to /health; the CPU used by other processes is recorded per pair.
 */
async function tuneEngine(opts: {
  binary: string;
  engine: ApplianceEngine;
  pairs: number;
  genTokens: number;
  promptTokens: number;
  nCpu: number;
  /** Only these variants (by name or flags), plus the control. */
  only?: string[];
  log: (m: string) => void;
}): Promise<TuningResult> {
  const { engine, log } = opts;
  const base = engine.args;
  const t = engine.plan.threads;
  const all: Array<{ name: string; change: string; args: string[] }> = [
    // A/A control: a second copy of the rendered command line. Its ratio is the method's own bias
    // and noise on this machine; a variant must move clearly further than the control does.
    { name: 'control (as rendered)', change: '(none)', args: base },
    { name: 'no repack', change: '--no-repack', args: [...base, '--no-repack'] },
    { name: 'flash attention on', change: '-fa on', args: withFlag(base, '--flash-attn', 'on', ['-fa']) },
    { name: 'flash attention off', change: '-fa off', args: withFlag(base, '--flash-attn', 'off', ['-fa']) },
    { name: 'no mmap', change: '--no-mmap', args: [...base, '--no-mmap'] },
    // Whichever way the render sets it, the other way is the variant.
    base.includes('--mlock')
      ? { name: 'no mlock', change: 'without --mlock', args: withoutFlag(base, '--mlock') }
      : { name: 'mlock', change: '--mlock', args: [...base, '--mlock'] },
    { name: 'ubatch 256', change: '-ub 256', args: withFlag(base, '--ubatch-size', '256', ['-ub']) },
    { name: 'ubatch 1024', change: '-ub 1024', args: withFlag(base, '--ubatch-size', '1024', ['-ub']) },
    { name: 'poll 0', change: '--poll 0', args: withFlag(base, '--poll', '0') },
    ...(opts.nCpu !== t
      ? [
          {
            name: 'threads-batch = logical CPUs',
            change: `--threads-batch ${opts.nCpu}`,
            args: withFlag(base, '--threads-batch', String(opts.nCpu), ['-tb']),
          },
        ]
      : []),
    ...(t > 1
      ? [
          {
            name: `threads ${t - 1}`,
            change: `--threads ${t - 1} --threads-batch ${t - 1}`,
            args: withFlag(withFlag(base, '--threads', String(t - 1), ['-t']), '--threads-batch', String(t - 1), [
              '-tb',
            ]),
          },
        ]
      : []),
  ];
  const variants = opts.only?.length
    ? all.filter((v, i) => i === 0 || opts.only!.some((o) => v.name === o || v.change === o))
    : all;
  if (opts.only?.length && variants.length - 1 < opts.only.length) {
    throw new Error(
      `unknown --tune-variants entry; known: ${all
        .slice(1)
        .map((v) => `"${v.name}"`)
        .join(', ')}`,
    );
  }
  const filler = 'The quick brown fox jumps over the lazy dog while the lighthouse keeper counts ships. ';
  const measure = async (ep: Endpoint) => {
    const gen = await postJson(ep, '/completion', {
      prompt: `Once upon a time (${nonce()})`,
      n_predict: opts.genTokens,
      cache_prompt: false,
      temperature: 0,
    });
    const pr = await postJson(ep, '/completion', {
      prompt: `(${nonce()}) ${filler.repeat(Math.ceil(opts.promptTokens / 18))}`,
      n_predict: 1,
      cache_prompt: false,
    });
    return {
      tg: (gen.body as { timings?: { predicted_per_second?: number } }).timings?.predicted_per_second ?? NaN,
      pp: (pr.body as { timings?: { prompt_per_second?: number } }).timings?.prompt_per_second ?? NaN,
    };
  };
  const basePort = await freePort();
  const t0 = performance.now();
  const baseline = await startEngine(opts.binary, base, basePort);
  const baseLoadMs = performance.now() - t0;
  const baseEp: Endpoint = { baseUrl: baseline.baseUrl, key: '', model: engine.config.modelId };
  const out: TuningResult['variants'] = [];
  try {
    await measure(baseEp); // warm
    for (const v of variants) {
      const row: TuningVariant = { name: v.name, change: v.change, pairs: [], loadMs: NaN };
      let srv: LlamaServer | undefined;
      try {
        const s0 = performance.now();
        srv = await startEngine(opts.binary, v.args, await freePort());
        row.loadMs = performance.now() - s0;
        const ep: Endpoint = { baseUrl: srv.baseUrl, key: '', model: engine.config.modelId };
        await measure(ep); // warm
        for (let i = 0; i < opts.pairs; i++) {
          const a = readCounters();
          const first = i % 2 ? ep : baseEp;
          const m1 = await measure(first);
          const m2 = await measure(first === ep ? baseEp : ep);
          const [mv, mb] = first === ep ? [m1, m2] : [m2, m1];
          const others = windowBetween(a, readCounters(), opts.nCpu).othersCores;
          row.pairs.push({ tg: mv.tg, tgBaseline: mb.tg, pp: mv.pp, ppBaseline: mb.pp, othersCores: round(others, 2) });
          log(
            `  ${v.name.padEnd(30)} pair ${i + 1}: tg ${tps(mv.tg)} vs ${tps(mb.tg)} (${fmt(mv.tg / mb.tg)}×), pp ${tps(mv.pp)} vs ${tps(mb.pp)} (${fmt(mv.pp / mb.pp)}×); others ${fmt(others)} cores`,
          );
        }
        log(
          `  ${v.name}: ready in ${fmt(row.loadMs / 1000, 1)} s (the rendered baseline: ${fmt(baseLoadMs / 1000, 1)} s)`,
        );
      } catch (e) {
        row.error = (e as Error).message.split('\n').slice(0, 3).join(' ');
        log(`  ${v.name}: failed: ${row.error}`);
      } finally {
        await srv?.stop();
      }
      out.push(summarise(row));
    }
  } finally {
    await baseline.stop();
  }
  // A verdict must also clear the A/A control: outside the spread of the control's own pair ratios.
  const control = out.find((v) => v.name.startsWith('control'));
  if (control && control.pairs.length) {
    const spread = (f: (p: TuningVariant['pairs'][number]) => number) => {
      const rs = control.pairs.map(f);
      return [Math.min(...rs), Math.max(...rs)] as const;
    };
    const [tgLo, tgHi] = spread((p) => p.tg / p.tgBaseline);
    const [ppLo, ppHi] = spread((p) => p.pp / p.ppBaseline);
    for (const v of out) {
      if (v === control || v.error) continue;
      const parts = v.note.split('; ').filter((part) => {
        if (part.startsWith('generation')) return v.tgRatio > tgHi || v.tgRatio < tgLo;
        if (part.startsWith('prompt')) return v.ppRatio > ppHi || v.ppRatio < ppLo;
        return true;
      });
      if (parts.length === 0 && v.note !== 'within noise' && !v.note.startsWith('one pair'))
        v.note = `within the A/A control's spread (${v.note})`;
      else if (parts.length) v.note = parts.join('; ');
    }
  }
  return {
    pairs: opts.pairs,
    genTokens: opts.genTokens,
    promptTokens: opts.promptTokens,
    baselineLoadMs: round(baseLoadMs, 0),
    variants: out,
  };
}

/** Paired ratios: a variant is better/worse only when every pair agrees (beyond ±5 %) and the median moves more than 10 %. */
function summarise(row: TuningVariant): TuningResult['variants'][number] {
  const tgR = row.pairs.map((p) => p.tg / p.tgBaseline);
  const ppR = row.pairs.map((p) => p.pp / p.ppBaseline);
  const verdict = (rs: number[], what: string) => {
    const m = median(rs);
    if (rs.length < 2 || !Number.isFinite(m)) return ''; // one pair proves nothing on a shared machine
    const consistent = rs.every((r) => r > 1.05) || rs.every((r) => r < 0.95);
    return consistent && Math.abs(m - 1) > 0.1 ? `${what} ${m > 1 ? 'better' : 'worse'} (${fmt(m)}×, every pair)` : '';
  };
  const note = row.error
    ? `failed: ${row.error}`
    : row.name.startsWith('control')
      ? `A/A control: the method's own bias and noise (generation ${fmt(median(tgR))}×, prompt ${fmt(median(ppR))}×)`
      : [verdict(tgR, 'generation'), verdict(ppR, 'prompt')].filter(Boolean).join('; ') ||
        (row.pairs.length < 2 ? 'one pair: no verdict' : 'within noise');
  return {
    ...row,
    loadMs: round(row.loadMs, 0),
    tgRatio: round(median(tgR)),
    ppRatio: round(median(ppR)),
    tgMedian: round(median(row.pairs.map((p) => p.tg)), 2),
    ppMedian: round(median(row.pairs.map((p) => p.pp)), 2),
    othersCoresMean: round(row.pairs.reduce((a, p) => a + p.othersCores, 0) / Math.max(1, row.pairs.length), 2),
    note,
  };
}
