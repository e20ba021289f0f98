// What the phases of one bench run share: the run (options, sizes, log, quiet monitor, the figures and
// notes collected so far) and the bed (the endpoint under test and the engine behind it).
import type { LlamaServer, LlamaVariant } from '@slm-copilot/testbed';
import { formatDuration, type HostFacts, type Logger } from '@slm-copilot/task-kit';
import type OpenAI from 'openai';
import type { EngineKind, Endpoint } from './client.js';
import type { WeightBytes } from './gguf-bytes.js';
import type { QuietMonitor } from './quiet.js';
import { nonce } from './stats.js';
import type { ApplianceEngine } from './testbed.js';
import type { BenchOptions, Figure, FigureId, Params } from './types.js';

export interface BenchRun {
  opts: BenchOptions;
  P: Params;
  log: (m: string) => void;
  monitor: QuietMonitor;
  host: HostFacts;
  figures: Figure[];
  notes: string[];
  /** Names the phase now measured (the quiet monitor files its samples under it) and logs it. */
  mark(phase: string): void;
  /** Records a figure as skipped, with the reason. */
  skip(n: string, id: FigureId, title: string, unit: string, why: string): void;
}

/** What the bench started and must stop: run in reverse order, then the temp root removed. */
export interface Resources {
  cleanups: Array<() => Promise<void>>;
  root?: string;
  /** The test bed's engine (the prompt-cache phase restarts it; the cleanup stops whichever runs). */
  server?: LlamaServer;
}

export interface Bed {
  testbed: boolean;
  /** The endpoint under test (the gateway). */
  ep: Endpoint;
  /** The engine directly, when reachable (figure 3). */
  direct?: Endpoint;
  /** The rendered engine (test bed only). */
  engine?: ApplianceEngine;
  llamaServerBin?: string;
  llamaBenchBin?: string;
  modelPath?: string;
  variant?: LlamaVariant;
  threads: number;
  kind: EngineKind;
  kindDetail: string;
  forced: boolean;
  /** Model bytes read per generated token (when the GGUF file is here). */
  wb?: WeightBytes;
  bytesPerToken: number | null;
  bytesSource: string;
  /** Prompt tokens of the short generation prompt (`shortPrompt`) as the endpoint counted them; 0 = unknown. */
  shortPromptTokens: number;
  /** The openai client for `ep`. */
  client: OpenAI;
  res: Resources;
}

export function newRun(
  opts: BenchOptions,
  P: Params,
  log: (m: string) => void,
  monitor: QuietMonitor,
  host: HostFacts,
) {
  const run: BenchRun = {
    opts,
    P,
    log,
    monitor,
    host,
    figures: [],
    notes: [],
    mark(phase) {
      monitor.mark(phase);
      log(`— ${phase}`);
    },
    skip(n, id, title, unit, why) {
      run.figures.push({ n, id, title, value: null, unit, detail: '', skipped: why, data: {} });
      log(`figure ${n} skipped: ${why}`);
    },
  };
  return run;
}

/**
 * The bench's progress function as a task-kit Logger (what the test bed's builders take): every line
 * goes to `log`, debug lines are dropped, phases are timed as task-kit's logger times them.
 */
export function asLogger(log: (m: string) => void): Logger {
  const logger: Logger = {
    debug: () => {},
    info: log,
    warn: log,
    error: log,
    addSecret: () => {},
    child: () => logger,
    async phase(name, fn) {
      const started = performance.now();
      log(`${name}…`);
      try {
        const result = await fn();
        log(`${name}: done in ${formatDuration(performance.now() - started)}`);
        return result;
      } catch (error) {
        log(`${name}: failed after ${formatDuration(performance.now() - started)}`);
        throw error;
      }
    },
  };
  return logger;
}

/** A short generation prompt, unique per call (no prompt-cache hit). */
export const shortPrompt = () => [
  { role: 'user' as const, content: `Write a long story about a lighthouse keeper. (${nonce()})` },
];

/** `--threads` as ONEAPP_COPILOT_THREADS for a render. */
export const threadOverrides = (opts: BenchOptions): Record<string, string> =>
  opts.threads !== undefined ? { ONEAPP_COPILOT_THREADS: String(opts.threads) } : {};

/** The first line of an error's message (a skipped figure's reason). */
export const firstLine = (e: unknown): string => (e as Error).message.split('\n')[0]!;
