// Figure 8: prompt speed of the shipped runtime-dispatching llama.cpp build ÷ a host-native build of
// the same source, on this CPU, measured in one run with interleaved llama-bench rounds.
import {
  bestCpuVariant,
  ensureLlamaBuild,
  hostCpuFlags,
  loadedCpuVariant,
  missingCpuFlags,
  type LlamaVariant,
} from '@slm-copilot/testbed';
import { asLogger } from './context.js';
import { ppRate, runLlamaBench } from './llama-bench.js';
import type { Figure } from './types.js';
import { median, round } from './stats.js';

export interface DispatchFigureOptions {
  model: string;
  threads: number;
  quick: boolean;
  log: (m: string) => void;
}

/** The goal: the dispatching build loses at most 5 % prompt speed against a native one. */
export const DISPATCH_GOAL = 0.95;

export async function dispatchVsNativeFigure(opts: DispatchFigureOptions): Promise<Figure> {
  const { log } = opts;
  const nativeVariant: LlamaVariant = (await missingCpuFlags('host')).length === 0 ? 'host' : 'dispatch';
  const dispatch = await ensureLlamaBuild({ variant: 'dispatch', log: asLogger(log) });
  const native = await ensureLlamaBuild({ variant: nativeVariant, log: asLogger(log) });
  const prompt = opts.quick ? 128 : 512;
  const rounds = 5;
  // -r: llama-bench's own repetitions per round; -n 0: prompt processing only
  const args = ['-p', String(prompt), '-n', '0', '-t', String(opts.threads), '-r', opts.quick ? '5' : '3'];
  const a: number[] = [];
  const b: number[] = [];
  let loaded: string | null = null;
  for (let r = 0; r < rounds; r++) {
    // alternate which build goes first so drift in the machine's load hits both alike
    const order = r % 2 === 0 ? (['d', 'n'] as const) : (['n', 'd'] as const);
    for (const which of order) {
      const run = await runLlamaBench(which === 'd' ? dispatch.llamaBench : native.llamaBench, opts.model, args);
      if (which === 'd') {
        a.push(ppRate(run));
        loaded ??= loadedCpuVariant(run.stderr);
      } else b.push(ppRate(run));
    }
    log(
      `  round ${r + 1}/${rounds}: dispatch pp${prompt} ${a.at(-1)!.toFixed(1)} tok/s, ` +
        `${nativeVariant} ${b.at(-1)!.toFixed(1)} tok/s`,
    );
  }
  const expected = bestCpuVariant(await hostCpuFlags());
  const ratio = median(a) / median(b);
  log(`dispatch build loaded CPU module: ${loaded ?? 'none named in the log'} (best for this CPU: ${expected})`);
  return {
    n: '8',
    id: 'dispatch-vs-native',
    title:
      `prompt tok/s: shipped dispatching build ÷ host-native ('${nativeVariant}') build, ` +
      `same source (pp${prompt})`,
    value: round(ratio),
    unit: '×',
    verdict:
      `${ratio >= DISPATCH_GOAL ? 'OK' : 'BELOW GOAL'} (goal ≥ ${DISPATCH_GOAL}); ` +
      `loaded CPU module: ${loaded ?? 'not named'}` +
      (loaded && loaded !== expected ? ` — expected ${expected} for this CPU` : ''),
    detail:
      `llama-bench median ${median(a).toFixed(1)} ÷ ${median(b).toFixed(1)} tok/s ` +
      `over ${rounds} interleaved rounds, ${opts.threads} thread(s)`,
    data: {
      dispatchPp: a,
      nativePp: b,
      loadedVariant: loaded,
      expectedVariant: expected,
      nativeVariant,
      args,
      phase: 'dispatch-vs-native',
    },
  };
}
