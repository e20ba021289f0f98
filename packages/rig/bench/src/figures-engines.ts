// Figures that compare builds and tools on this machine: 7 (LocalAI ÷ llama-server, when the
// endpoint is LocalAI), 8 (the shipped dispatching llama.cpp build ÷ a host-native one, test bed)
// and 6 (model-fetch ÷ wget -c + sha256sum).
import { existsSync } from 'node:fs';
import { freePort } from '@slm-copilot/task-kit';
import { openaiClient, streamChat, type Endpoint } from './client.js';
import { firstLine, shortPrompt, threadOverrides, type Bed, type BenchRun } from './context.js';
import { dispatchVsNativeFigure } from './dispatch-figure.js';
import { runFetchBench } from './fetch-bench.js';
import { fmt, median, round, tps } from './stats.js';
import { removeRoot, renderApplianceEngine, startEngine, tempRoot } from './testbed.js';

/** Figure 7: llama-server started here with the rendered flags, streamed generation against LocalAI's. */
export async function localaiFigure(run: BenchRun, bed: Bed): Promise<void> {
  if (bed.kind !== 'localai') return;
  run.mark('localai-vs-llama-server');
  const { llamaServerBin, modelPath } = bed;
  if (!llamaServerBin || !modelPath || !existsSync(modelPath)) {
    run.skip(
      '7',
      'localai-vs-llama-server',
      'LocalAI ÷ llama-server on the same machine',
      '×',
      'needs a llama-server binary (--llama-server) and the model file (--model) on this machine',
    );
    return;
  }
  const { P } = run;
  const cmpRoot = await tempRoot();
  try {
    const port = await freePort();
    const cmp = await renderApplianceEngine({
      root: cmpRoot,
      model: modelPath,
      enginePort: port,
      overrides: threadOverrides(run.opts),
    });
    const ls = await startEngine(llamaServerBin, cmp.args, port);
    try {
      const lsEp: Endpoint = { baseUrl: ls.baseUrl, key: '', model: cmp.config.modelId };
      const lsClient = openaiClient(lsEp);
      await streamChat(lsClient, lsEp.model, shortPrompt(), { maxTokens: 4 });
      const a: number[] = [];
      const b: number[] = [];
      for (let r = 0; r < P.rounds; r++) {
        const la = await streamChat(bed.client, bed.ep.model, shortPrompt(), { maxTokens: P.genTokens });
        a.push(la.genTokensPerSecond);
        const lb = await streamChat(lsClient, lsEp.model, shortPrompt(), { maxTokens: P.genTokens });
        b.push(lb.genTokensPerSecond);
      }
      run.figures.push({
        n: '7',
        id: 'localai-vs-llama-server',
        title: 'LocalAI through the gateway ÷ llama-server (same model, threads) on this machine',
        value: round(median(a) / median(b)),
        unit: '×',
        detail:
          `${tps(median(a))} ÷ ${tps(median(b))} ` +
          "(llama-server started by the bench with the appliance's rendered flags, direct HTTP)",
        data: { localaiTokS: a, llamaServerTokS: b, llamaServerArgs: cmp.args, phase: 'localai-vs-llama-server' },
      });
    } finally {
      await ls.stop();
    }
  } finally {
    removeRoot(cmpRoot);
  }
}

/** Figure 8 (test bed only): see dispatch-figure.ts. */
export async function dispatchFigure(run: BenchRun, bed: Bed): Promise<void> {
  const f8 = ['8', 'dispatch-vs-native', 'prompt tok/s: dispatching build ÷ host-native build', '×'] as const;
  if (!bed.testbed || !bed.modelPath) {
    run.skip(...f8, 'compares two builds made on this machine: test-bed runs only');
    return;
  }
  run.mark('dispatch-vs-native');
  await dispatchVsNativeFigure({ model: bed.modelPath, threads: bed.threads, quick: !!run.opts.quick, log: run.log })
    .then((f) => run.figures.push(f))
    .catch((e: Error) => run.skip(...f8, firstLine(e)));
}

/** Figure 6: model-fetch's own benchmark, run as a child process. */
export async function fetchFigure(run: BenchRun, bed: Bed): Promise<void> {
  const { P, log } = run;
  const title = 'model-fetch ÷ wget -c + sha256sum';
  if (run.opts.skipFetch) {
    run.skip('6', 'fetch-vs-wget', title, '×', '--skip-fetch');
    return;
  }
  run.mark('fetch');
  try {
    const f = await runFetchBench({ sizeMb: P.fetchSizeMb, log: (m) => log(m) });
    run.figures.push({
      n: '6',
      id: 'fetch-vs-wget',
      title: `${title} (${P.fetchSizeMb} MiB, local mirror)`,
      value: round(f.ratio),
      unit: '×',
      detail:
        `fetchModel ${fmt(f.fetchModelMs / 1000, 1)} s (download + streamed SHA-256 + install) ÷ ` +
        `${fmt(f.wgetThenSha256sumMs / 1000, 1)} s (wget -c, then sha256sum); ` +
        `model-fetch's bench/fetch-vs-wget.ts${bed.testbed ? '' : ', run on this machine'}`,
      data: { ...f, output: undefined, phase: 'fetch' },
    });
  } catch (e) {
    run.skip('6', 'fetch-vs-wget', title, '×', firstLine(e));
  }
}
