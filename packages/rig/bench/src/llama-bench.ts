// Bare-engine baselines with llama.cpp's own llama-bench (`-o json`).
import { $ } from 'zx';

export interface LlamaBenchRow {
  n_threads: number;
  n_prompt: number;
  n_gen: number;
  n_batch: number;
  n_ubatch: number;
  flash_attn: number | string | boolean;
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

/** Generation tokens/s (the tg row) of a run with `-p 0 -n N`, or the row matching `threads`. */
export function tgRate(run: LlamaBenchRun, threads?: number): number {
  const row = run.rows.find(
    (r) => r.n_gen > 0 && r.n_prompt === 0 && (threads === undefined || r.n_threads === threads),
  );
  if (!row) throw new Error(`llama-bench: no generation row${threads !== undefined ? ` for ${threads} threads` : ''}`);
  return row.avg_ts;
}

/** Prompt tokens/s (the pp row). */
export function ppRate(run: LlamaBenchRun, threads?: number): number {
  const row = run.rows.find(
    (r) => r.n_prompt > 0 && r.n_gen === 0 && (threads === undefined || r.n_threads === threads),
  );
  if (!row) throw new Error(`llama-bench: no prompt row${threads !== undefined ? ` for ${threads} threads` : ''}`);
  return row.avg_ts;
}
