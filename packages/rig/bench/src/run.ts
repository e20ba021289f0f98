// The benchmark: every figure is a ratio (or a difference) of two measurements taken in this one
// process, interleaved where the machine can drift, with the machine's load recorded alongside.
// This file runs the phases in order (setup.ts, figures-*.ts, tune.ts) and assembles the report.
import path from 'node:path';
import { gatherHostFacts } from '@slm-copilot/task-kit';
import { newRun, type Bed, type BenchRun, type Resources } from './context.js';
import { dispatchFigure, fetchFigure, localaiFigure } from './figures-engines.js';
import {
  bandwidthBoundFigure,
  bandwidthFigure,
  gatewayFigure,
  generationRounds,
  threadSweepFigure,
} from './figures-generation.js';
import { promptCacheFigures, ttftFigure } from './figures-latency.js';
import { kvTypeFigures } from './figures-kv.js';
import { restartCacheFigure } from './figures-restart.js';
import { taskCacheFigure } from './figures-tasks.js';
import { teamCacheFigure } from './figures-team.js';
import { machineFacts } from './machine.js';
import { QuietMonitor, type QuietReport } from './quiet.js';
import { setUp } from './setup.js';
import { fmt, round } from './stats.js';
import { removeRoot } from './testbed.js';
import { runTuneOnly } from './tune-only.js';
import { tuneEngine } from './tune.js';
import { defaultLog, FULL, QUICK, type BenchOptions, type BenchReport, type TuningResult } from './types.js';

export type { BenchOptions, BenchReport, Figure, FigureId, TuningResult, TuningVariant } from './types.js';

async function runCleanups(res: Resources): Promise<void> {
  for (const c of res.cleanups.splice(0).reverse()) await c().catch(() => {});
}

/** The flag variants, by default in a full test-bed run. */
async function tuning(run: BenchRun, bed: Bed): Promise<TuningResult | undefined> {
  const { opts } = run;
  if (!((opts.tune ?? (!opts.quick && bed.testbed)) && bed.testbed && bed.engine && bed.llamaServerBin))
    return undefined;
  run.mark('tuning');
  return tuneEngine({
    binary: bed.llamaServerBin,
    engine: bed.engine,
    pairs: opts.tunePairs ?? run.P.tunePairs,
    genTokens: opts.quick ? 16 : 32,
    // long-prompt mode: a new turn's worth of tokens at the prefix's depth
    promptTokens: opts.tuneDepth ? (opts.quick ? 128 : 1024) : opts.quick ? 64 : 192,
    depth: opts.tuneDepth,
    nCpu: run.monitor.nCpu,
    only: opts.tuneVariants,
    log: run.log,
  });
}

/** Files each figure's phase load under it, sorts the figures and adds the run's notes. */
function annotate(run: BenchRun, bed: Bed, quiet: QuietReport): void {
  const { figures, notes } = run;
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
      f.verdict +=
        ` — measured while other processes used ${fmt(p.othersCoresMean)} of ${quiet.cpus} cores, ` +
        'which hurts the larger thread counts most; repeat on a quiet machine before acting on it';
    }
  }
  figures.sort((a, b) => a.n.localeCompare(b.n, 'en', { numeric: true }));
  if (!quiet.quiet) notes.push(quiet.verdict);
  if (run.opts.engine === 'localai' && bed.testbed)
    notes.push(
      '--engine localai on the test bed: the endpoint is really llama-server; ' +
        'this only exercises the LocalAI code path (LocalAI cannot run on this machine)',
    );
}

function report(run: BenchRun, bed: Bed, quiet: QuietReport, tuned: TuningResult | undefined, t0: number) {
  const { ep, modelPath } = bed;
  const result: BenchReport = {
    tool: 'slm-bench',
    date: new Date().toISOString(),
    quick: Boolean(run.opts.quick),
    mode: bed.testbed ? 'testbed' : 'endpoint',
    durationSeconds: round((performance.now() - t0) / 1000, 1),
    machine: machineFacts(run.host),
    engine: {
      kind: bed.kind,
      detail: bed.kindDetail,
      variant: bed.variant,
      threads: bed.threads,
      args: bed.engine?.args,
      forced: bed.forced,
    },
    endpoint: { url: ep.baseUrl, model: ep.model },
    model: {
      path: modelPath ?? null,
      name: modelPath ? path.basename(modelPath) : ep.model,
      bytes: bed.wb?.fileBytes ?? null,
      bytesPerToken: bed.bytesPerToken,
      bytesSource: bed.bytesSource,
    },
    quiet,
    figures: run.figures,
    tuning: tuned,
    notes: run.notes,
  };
  return result;
}

export async function runBench(opts: BenchOptions = {}): Promise<BenchReport> {
  if (opts.tuneOnly) return runTuneOnly(opts);
  const log = opts.log ?? defaultLog;
  const P = { ...(opts.quick ? QUICK : FULL) };
  if (opts.fetchSizeMb) P.fetchSizeMb = opts.fetchSizeMb;
  const t0 = performance.now();
  const monitor = new QuietMonitor();
  log(`sampling the machine for ${opts.quick ? 2 : 5} s before starting …`);
  const before = await monitor.start(opts.quick ? 2000 : 5000);
  log(
    `before: load ${before.load1.toFixed(2)}, ` +
      `other processes ${before.othersCores.toFixed(2)} of ${monitor.nCpu} cores`,
  );
  const run = newRun(opts, P, log, monitor, await gatherHostFacts());
  const res: Resources = { cleanups: [] };
  try {
    const bed = await setUp(run, res);
    const bw = await bandwidthFigure(run, bed);
    const samples = await generationRounds(run, bed);
    gatewayFigure(run, bed, samples);
    bandwidthBoundFigure(run, bed, samples, bw);
    threadSweepFigure(run, bed, samples);
    await ttftFigure(run, bed);
    await promptCacheFigures(run, bed);
    // After 4b (which may leave the test bed's engine without its prompt cache): restarts it as rendered.
    // 4d continues from 4c's engine: the last user's slot is saved, the engine restarted, the slot restored.
    await restartCacheFigure(run, bed, await taskCacheFigure(run, bed));
    await localaiFigure(run, bed);
    // Main engine and gateway are no longer needed.
    await runCleanups(res);
    await kvTypeFigures(run, bed);
    await dispatchFigure(run, bed);
    await teamCacheFigure(run, bed);
    const tuned = await tuning(run, bed);
    await fetchFigure(run, bed);
    const quiet = monitor.stop();
    annotate(run, bed, quiet);
    return report(run, bed, quiet, tuned, t0);
  } finally {
    await runCleanups(res);
    if (res.root) removeRoot(res.root);
    monitor.stop();
  }
}
