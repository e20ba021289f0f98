// Phase "tuning": server-flag variants against the rendered command line. The rendered baseline server
// stays up the whole time; each variant runs beside it, and requests alternate between the two (order
// flipped every pair), so each variant/baseline pair is measured seconds apart and the paired ratio
// cancels the machine's drift. Speeds are the engine's own timings (/completion, cache_prompt:false);
// the variant's start is timed to /health; the CPU used by other processes is recorded per pair.
// With `depth` (`--tune-depth`, issue #14 item 5: long prompts are the workload), every engine first
// takes a `depth`-token prefix into slot 0's cache, and each measurement then continues it, as an
// agent's next turn does: `promptTokens` new tokens processed at that depth, and generation after it.
import { freePort } from '@slm-copilot/task-kit';
import type { LlamaServer } from '@slm-copilot/testbed';
import { postJson, type Endpoint } from './client.js';
import { readCounters, windowBetween } from './quiet.js';
import { fmt, median, nonce, round, tps } from './stats.js';
import { startEngine, withFlag, withoutFlag, type ApplianceEngine } from './testbed.js';
import type { TuningResult, TuningVariant } from './types.js';

export interface TuneOptions {
  binary: string;
  engine: ApplianceEngine;
  pairs: number;
  genTokens: number;
  promptTokens: number;
  /** Long-prompt mode: the cached prefix every measurement continues (tokens, approximately); 0 = none. */
  depth?: number;
  nCpu: number;
  /** Only these variants (by name or flags), plus the control. */
  only?: string[];
  log: (m: string) => void;
}

interface FlagVariant {
  name: string;
  change: string;
  args: string[];
}

/** Every variant of the rendered command line `base` (threads `t`), the A/A control first. */
function flagVariants(base: string[], t: number, nCpu: number): FlagVariant[] {
  return [
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
    { name: 'ubatch 2048', change: '-ub 2048', args: withFlag(base, '--ubatch-size', '2048', ['-ub']) },
    {
      name: 'batch 4096 ubatch 1024',
      change: '-b 4096 -ub 1024',
      args: withFlag(withFlag(base, '--batch-size', '4096', ['-b']), '--ubatch-size', '1024', ['-ub']),
    },
    { name: 'poll 0', change: '--poll 0', args: withFlag(base, '--poll', '0') },
    ...(nCpu !== t
      ? [
          {
            name: 'threads-batch = logical CPUs',
            change: `--threads-batch ${nCpu}`,
            args: withFlag(base, '--threads-batch', String(nCpu), ['-tb']),
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
}

/** The control plus the variants named in `only` (all when none); an unknown name is an error. */
function pickVariants(all: FlagVariant[], only?: string[]): FlagVariant[] {
  if (!only?.length) return all;
  const variants = all.filter((v, i) => i === 0 || only.some((o) => v.name === o || v.change === o));
  if (variants.length - 1 < only.length) {
    const known = all
      .slice(1)
      .map((v) => `"${v.name}"`)
      .join(', ');
    throw new Error(`unknown --tune-variants entry; known: ${known}`);
  }
  return variants;
}

const FILLER = 'The quick brown fox jumps over the lazy dog while the lighthouse keeper counts ships. ';

/** Tokens per FILLER in the engine's vocabulary (measured by `measureFiller`; 18 until then). */
let fillerTokens = 18;

/** `n` tokens (about) of filler, made unique by a nonce at its start. */
const filler = (n: number, tag = nonce()) => `(${tag}) ${FILLER.repeat(Math.ceil(n / fillerTokens))}`;

/** The engine's own count of FILLER's tokens (its /tokenize), so a prefix of N tokens is N in this model. */
async function measureFiller(ep: Endpoint): Promise<void> {
  const r = await postJson(ep, '/tokenize', { content: FILLER.repeat(32) });
  const tokens = (r.body as { tokens?: unknown[] } | undefined)?.tokens;
  if (r.status === 200 && Array.isArray(tokens) && tokens.length > 0) fillerTokens = tokens.length / 32;
}

/** The long-prompt mode's prefix: the same for every engine of one tuning run. */
let prefix = '';

type Timings = { timings?: { predicted_per_second?: number; prompt_per_second?: number; prompt_n?: number } };

/**
 * The engine's own generation and prompt speeds: one request of each, uncached — or, in the long-prompt
 * mode, continuing the cached prefix in slot 0 (only the new tokens are processed).
 */
async function measure(ep: Endpoint, opts: TuneOptions): Promise<{ tg: number; pp: number; ppTokens: number }> {
  const deep = Boolean(opts.depth);
  const at = (prompt: string) =>
    deep ? { prompt: prefix + prompt, cache_prompt: true, id_slot: 0 } : { prompt, cache_prompt: false };
  const gen = await postJson(ep, '/completion', {
    ...at(`Once upon a time (${nonce()})`),
    n_predict: opts.genTokens,
    temperature: 0,
  });
  const pr = await postJson(ep, '/completion', { ...at(filler(opts.promptTokens)), n_predict: 1 });
  return {
    tg: (gen.body as Timings).timings?.predicted_per_second ?? NaN,
    pp: (pr.body as Timings).timings?.prompt_per_second ?? NaN,
    // tokens the engine processed for pp: about promptTokens when the prefix came from the cache
    ppTokens: (pr.body as Timings).timings?.prompt_n ?? NaN,
  };
}

/** Long-prompt mode: the prefix into slot 0 (untimed); a no-op otherwise. */
async function fillPrefix(ep: Endpoint, opts: TuneOptions): Promise<void> {
  if (!opts.depth) return;
  const r = await postJson(ep, '/completion', { prompt: prefix, cache_prompt: true, id_slot: 0, n_predict: 1 });
  if (r.status !== 200) throw new Error(`the ${opts.depth}-token prefix was refused: HTTP ${r.status}`);
}

/** Starts one variant beside the baseline and measures `opts.pairs` alternating pairs. */
async function runVariant(v: FlagVariant, baseEp: Endpoint, baseLoadMs: number, opts: TuneOptions) {
  const { log } = opts;
  const row: TuningVariant = { name: v.name, change: v.change, pairs: [], loadMs: NaN };
  let srv: LlamaServer | undefined;
  try {
    const s0 = performance.now();
    srv = await startEngine(opts.binary, v.args, await freePort());
    row.loadMs = performance.now() - s0;
    const ep: Endpoint = { baseUrl: srv.baseUrl, key: '', model: opts.engine.config.modelId };
    await fillPrefix(ep, opts);
    await measure(ep, opts); // warm
    for (let i = 0; i < opts.pairs; i++) {
      const a = readCounters();
      const first = i % 2 ? ep : baseEp;
      const m1 = await measure(first, opts);
      const m2 = await measure(first === ep ? baseEp : ep, opts);
      const [mv, mb] = first === ep ? [m1, m2] : [m2, m1];
      const others = windowBetween(a, readCounters(), opts.nCpu).othersCores;
      row.pairs.push({ tg: mv.tg, tgBaseline: mb.tg, pp: mv.pp, ppBaseline: mb.pp, othersCores: round(others, 2) });
      log(
        `  ${v.name.padEnd(30)} pair ${i + 1}: tg ${tps(mv.tg)} vs ${tps(mb.tg)} (${fmt(mv.tg / mb.tg)}×), ` +
          `pp ${tps(mv.pp)} vs ${tps(mb.pp)} (${fmt(mv.pp / mb.pp)}×) over ${mv.ppTokens}/${mb.ppTokens} tokens; ` +
          `others ${fmt(others)} cores`,
      );
    }
    log(`  ${v.name}: ready in ${fmt(row.loadMs / 1000, 1)} s (the rendered baseline: ${fmt(baseLoadMs / 1000, 1)} s)`);
  } catch (e) {
    row.error = (e as Error).message.split('\n').slice(0, 3).join(' ');
    log(`  ${v.name}: failed: ${row.error}`);
  } finally {
    await srv?.stop();
  }
  return summarise(row);
}

/** A verdict must also clear the A/A control: outside the spread of the control's own pair ratios. */
function judgeAgainstControl(out: TuningResult['variants']): void {
  const control = out.find((v) => v.name.startsWith('control'));
  if (!control || !control.pairs.length) return;
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

/** Runs every (or the chosen) flag variant beside the rendered baseline; see the head of this file. */
export async function tuneEngine(opts: TuneOptions): Promise<TuningResult> {
  const { engine } = opts;
  const base = engine.args;
  const variants = pickVariants(flagVariants(base, engine.plan.threads, opts.nCpu), opts.only);
  const basePort = await freePort();
  const t0 = performance.now();
  const baseline = await startEngine(opts.binary, base, basePort);
  const baseLoadMs = performance.now() - t0;
  const baseEp: Endpoint = { baseUrl: baseline.baseUrl, key: '', model: engine.config.modelId };
  const out: TuningResult['variants'] = [];
  await measureFiller(baseEp);
  prefix = opts.depth ? filler(opts.depth) : '';
  try {
    await fillPrefix(baseEp, opts);
    await measure(baseEp, opts); // warm
    for (const v of variants) out.push(await runVariant(v, baseEp, baseLoadMs, opts));
  } finally {
    await baseline.stop();
  }
  judgeAgainstControl(out);
  return {
    pairs: opts.pairs,
    genTokens: opts.genTokens,
    promptTokens: opts.promptTokens,
    depth: opts.depth ?? 0,
    baselineLoadMs: round(baseLoadMs, 0),
    variants: out,
  };
}

/**
 * Paired ratios: a variant is better/worse only when every pair agrees (beyond ±5 %) and the median
 * moves more than 10 %.
 */
function summarise(row: TuningVariant): TuningResult['variants'][number] {
  const tgR = row.pairs.map((p) => p.tg / p.tgBaseline);
  const ppR = row.pairs.map((p) => p.pp / p.ppBaseline);
  const verdict = (rs: number[], what: string) => {
    const m = median(rs);
    if (rs.length < 2 || !Number.isFinite(m)) return ''; // one pair proves nothing on a shared machine
    const consistent = rs.every((r) => r > 1.05) || rs.every((r) => r < 0.95);
    return consistent && Math.abs(m - 1) > 0.1 ? `${what} ${m > 1 ? 'better' : 'worse'} (${fmt(m)}×, every pair)` : '';
  };
  const control =
    "A/A control: the method's own bias and noise " + `(generation ${fmt(median(tgR))}×, prompt ${fmt(median(ppR))}×)`;
  const note = row.error
    ? `failed: ${row.error}`
    : row.name.startsWith('control')
      ? control
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
