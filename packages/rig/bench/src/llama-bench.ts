// Bare-engine baselines with llama.cpp's own llama-bench (`-o json`).
import { $ } from 'zx';

export interface LlamaBenchRow {
  n_threads: number;
  n_prompt: number;
  n_gen: number;
  /** Tokens already in the KV cache before the test (`-d`; absent from older llama-bench builds). */
  n_depth?: number;
  n_batch: number;
  n_ubatch: number;
  flash_attn: number | string | boolean;
  type_k?: string;
  type_v?: string;
  load_mode?: string;
  poll?: number;
  model_size: number;
  avg_ts: number;
  stddev_ts: number;
  samples_ts: number[];
}

export interface LlamaBenchRun {
  /** Tests exactly as llama-bench printed them. */
  rows: LlamaBenchRow[];
  args: string[];
  ms: number;
  /** llama-bench's stderr (ggml's backend loader logs which CPU module it loaded there). */
  stderr: string;
}

/**
 * Runs `llama-bench -m MODEL … -o json`. Every value list (`-t 1,2`) becomes one row per
 * combination. Throws with llama-bench's stderr tail on failure.
 */
export async function runLlamaBench(binary: string, model: string, args: string[]): Promise<LlamaBenchRun> {
  const all = ['-m', model, ...args, '-o', 'json'];
  const t0 = performance.now();
  const r = await $({ quiet: true, nothrow: true })`${binary} ${all}`;
  const ms = performance.now() - t0;
  if (r.exitCode !== 0)
    throw new Error(
      `llama-bench ${all.join(' ')} exited ${r.exitCode}:\n${r.stderr.split('\n').slice(-15).join('\n')}`,
    );
  let rows: LlamaBenchRow[];
  try {
    rows = JSON.parse(r.stdout) as LlamaBenchRow[];
  } catch (e) {
    throw new Error(`llama-bench printed no JSON: ${(e as Error).message}\n${r.stdout.slice(0, 500)}`, { cause: e });
  }
  return { rows, args: all, ms, stderr: r.stderr };
}

const atDepth = (r: LlamaBenchRow, depth: number) => (r.n_depth ?? 0) === depth;

/** Generation tokens/s (the tg row of `-p 0 -n N`), for `threads` and at `depth` (`-d`; default 0). */
export function tgRate(run: LlamaBenchRun, threads?: number, depth = 0): number {
  const row = run.rows.find(
    (r) => r.n_gen > 0 && r.n_prompt === 0 && atDepth(r, depth) && (threads === undefined || r.n_threads === threads),
  );
  if (!row)
    throw new Error(
      `llama-bench: no generation row${threads !== undefined ? ` for ${threads} threads` : ''} at depth ${depth}`,
    );
  return row.avg_ts;
}

/** Prompt tokens/s (the pp row), for `threads` and at `depth` (default 0). */
export function ppRate(run: LlamaBenchRun, threads?: number, depth = 0): number {
  const row = run.rows.find(
    (r) => r.n_prompt > 0 && r.n_gen === 0 && atDepth(r, depth) && (threads === undefined || r.n_threads === threads),
  );
  if (!row)
    throw new Error(
      `llama-bench: no prompt row${threads !== undefined ? ` for ${threads} threads` : ''} at depth ${depth}`,
    );
  return row.avg_ts;
}

/** llama-server's flags that set the KV cache, and llama-bench's names for them (tools/llama-bench). */
const KV_FLAGS: Array<[names: string[], bench: string]> = [
  [['--cache-type-k', '-ctk'], '-ctk'],
  [['--cache-type-v', '-ctv'], '-ctv'],
  [['--flash-attn', '-fa'], '-fa'],
];

/**
 * The llama-bench arguments that give it the same KV cache as a llama-server command line: its cache
 * types and flash attention. A flag the server does not set is left to llama-bench, whose defaults
 * are llama-server's (f16, flash attention auto).
 */
export function kvBenchArgs(serverArgs: readonly string[]): string[] {
  const out: string[] = [];
  for (const [names, bench] of KV_FLAGS) {
    const i = serverArgs.findIndex((a) => names.includes(a));
    const value = i >= 0 ? serverArgs[i + 1] : undefined;
    if (value !== undefined && !value.startsWith('-')) out.push(bench, value);
  }
  return out;
}
