// `--tune-only`: the test bed's rendered engine and the flag variants, no figures.
import path from 'node:path';
import { freePort, gatherHostFacts } from '@slm-copilot/task-kit';
import { ensureDevstralShapedModel, ensureLlamaBuild, ensureTinyModel, missingCpuFlags } from '@slm-copilot/testbed';
import { asLogger, threadOverrides } from './context.js';
import { weightBytesPerToken } from './gguf-bytes.js';
import { machineFacts } from './machine.js';
import { QuietMonitor } from './quiet.js';
import { round } from './stats.js';
import { removeRoot, renderApplianceEngine, tempRoot } from './testbed.js';
import { tuneEngine } from './tune.js';
import { defaultLog, FULL, QUICK, type BenchOptions, type BenchReport } from './types.js';

export async function runTuneOnly(opts: BenchOptions): Promise<BenchReport> {
  if (opts.url) throw new Error('--tune-only works on the test bed only (it restarts the engine with other flags)');
  const log = opts.log ?? defaultLog;
  const t0 = performance.now();
  const monitor = new QuietMonitor();
  await monitor.start(opts.quick ? 2000 : 5000);
  const host = await gatherHostFacts();
  const variant = opts.variant ?? ((await missingCpuFlags('host')).length === 0 ? 'host' : 'dispatch');
  const logger = asLogger(log);
  const llama = await ensureLlamaBuild({ variant, log: logger });
  let modelPath = opts.model;
  let sha: string | undefined;
  if (!modelPath) {
    const m = opts.quick
      ? await ensureTinyModel({ llama, log: logger })
      : await ensureDevstralShapedModel({ llama, log: logger });
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
      overrides: threadOverrides(opts),
    });
    log(`engine (as rendered): llama-server ${engine.args.join(' ')}`);
    monitor.mark('tuning');
    const tuning = await tuneEngine({
      binary: opts.llamaServer ?? llama.llamaServer,
      engine,
      pairs: opts.tunePairs ?? (opts.quick ? QUICK : FULL).tunePairs,
      genTokens: opts.quick ? 16 : 32,
      // long-prompt mode: a new turn's worth of tokens at the prefix's depth
      promptTokens: opts.tuneDepth ? (opts.quick ? 128 : 1024) : opts.quick ? 64 : 192,
      depth: opts.tuneDepth,
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
