// The bench's data: its options, the figures it measures and the report it returns.
import type { LlamaVariant } from '@slm-copilot/testbed';
import type { EngineKind } from './client.js';
import type { QuietReport } from './quiet.js';

export type FigureId =
  | 'gateway-vs-llama-bench'
  | 'bandwidth-efficiency'
  | 'read-bandwidth'
  | 'ttft-overhead'
  | 'prompt-cache-on'
  | 'prompt-cache-off'
  | 'cache-new-task'
  | 'cache-after-restart'
  | 'kv-q8_0-prefill'
  | 'kv-q8_0-generation'
  | 'kv-q4_0-prefill'
  | 'kv-q4_0-generation'
  | 'thread-sweep'
  | 'fetch-vs-wget'
  | 'localai-vs-llama-server'
  | 'dispatch-vs-native'
  | 'team-cache-affinity';

export interface Figure {
  /** "1" … "8" as in the README; "2a" is the bandwidth that figure 2 divides by. */
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
  /** Long-prompt mode: the cached prefix each measurement continued (0 = uncached requests). */
  depth: number;
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
    /**
     * Proactive reclaim by the kernel's DAMON (e.g. a cloud's memory overcommit): idle pages are paged
     * out, which makes a resting engine slow on its next request.
     */
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
  /** Long-prompt tuning: a cached prefix of this many tokens before every measured request. */
  tuneDepth?: number;
  skipFetch?: boolean;
  log?: (msg: string) => void;
}

/** The sizes of one run: `--quick` or full. */
export interface Params {
  genTokens: number;
  rounds: number;
  promptTokensBench: number;
  ttftRounds: number;
  systemTokens: number;
  /** Figure 4c: new tasks per user (two users alternating). */
  tasksPerUser: number;
  /** Figures 9a–9d: the prompt each KV type's engine processes, and the reply length at that depth. */
  kvDepth: number;
  kvGenTokens: number;
  bwBytes: number;
  bwPasses: number;
  fetchSizeMb: number;
  tunePairs: number;
}

export const QUICK: Params = {
  genTokens: 24,
  rounds: 2,
  promptTokensBench: 32,
  ttftRounds: 6,
  systemTokens: 1024,
  tasksPerUser: 2,
  kvDepth: 512,
  kvGenTokens: 8,
  bwBytes: 256 * 2 ** 20,
  bwPasses: 4,
  fetchSizeMb: 64,
  tunePairs: 1,
};
export const FULL: Params = {
  genTokens: 48,
  rounds: 3,
  promptTokensBench: 128,
  ttftRounds: 30,
  systemTokens: 8192,
  tasksPerUser: 3,
  kvDepth: 16384,
  kvGenTokens: 32,
  bwBytes: 1024 * 2 ** 20,
  bwPasses: 8,
  fetchSizeMb: 1536,
  tunePairs: 3,
};

/** The progress log when the caller gives none: stderr, tagged. */
export const defaultLog = (m: string) => void process.stderr.write(`[bench] ${m}\n`);
