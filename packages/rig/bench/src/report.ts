// The table (terminal), the markdown (README) and the JSON of one run.
import type { BenchReport, Figure } from './types.js';

const num = (f: Figure): string => {
  if (f.value === null) return 'skipped';
  const v = f.value;
  const digits = f.unit === 'ms' ? 2 : f.unit === 'GB/s' ? 1 : Math.abs(v) < 0.1 ? 3 : 2;
  return `${v.toFixed(digits)}${f.unit === '×' ? '×' : ` ${f.unit}`}`;
};

const loadCell = (f: Figure, cpus: number) =>
  f.load ? `${f.load.othersCoresMean.toFixed(2)}/${cpus} cores, load ≤ ${f.load.load1Max.toFixed(1)}` : '';

function header(r: BenchReport): string[] {
  const m = r.machine;
  const kind = r.figures.length === 0 && r.tuning ? 'engine-flag tuning' : r.quick ? 'quick' : 'full';
  const where =
    r.mode === 'testbed'
      ? 'test bed (real nginx + TLS + llama-server started by the bench)'
      : `endpoint ${r.endpoint.url}`;
  const reclaim = m.proactiveReclaim && m.proactiveReclaim !== 'none' ? `, ${m.proactiveReclaim}` : '';
  const perToken = r.model.bytesPerToken ? `, ${(r.model.bytesPerToken / 1e9).toFixed(3)} GB read per token` : '';
  return [
    `SLM-Copilot bench — ${r.date.slice(0, 16).replace('T', ' ')} UTC — ${kind} run, ${where}, ${r.durationSeconds} s`,
    `machine: ${m.cpuModel}, ${m.logicalCpus} CPUs (${m.physicalCores} physical cores), ${m.memTotalGiB} GiB, ` +
      `Linux ${m.kernel}, THP ${m.transparentHugepages}${m.avx512 ? ', AVX-512' : ''}${reclaim}`,
    `engine: ${r.engine.detail}${r.engine.variant ? ` (${r.engine.variant} build)` : ''}, ` +
      `${r.engine.threads} threads; model ${r.model.name}${perToken}`,
    r.quiet.verdict,
  ];
}

export function formatTable(r: BenchReport): string {
  const rows = r.figures.map((f) => [
    f.n,
    f.title,
    num(f),
    f.skipped ? `skipped: ${f.skipped}` : f.detail + (f.verdict ? ` → ${f.verdict}` : ''),
    loadCell(f, r.quiet.cpus),
  ]);
  const heads = ['#', 'figure', 'value', 'measurements', "others' CPU"];
  const w = [0, 1, 2].map((i) => Math.max(heads[i]!.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    `${cells[0]!.padEnd(w[0]!)}  ${cells[1]!.padEnd(w[1]!)}  ${cells[2]!.padStart(w[2]!)}  ` +
    `${cells[4] ? `[${cells[4]}] ` : ''}${cells[3]}`;
  const out = [
    ...header(r),
    ...(rows.length ? ['', line([heads[0]!, heads[1]!, heads[2]!, heads[3]!, '']), ...rows.map(line)] : []),
  ];
  if (r.tuning) {
    const t = r.tuning;
    out.push(
      '',
      `engine flag variants — each beside the rendered baseline, requests alternating, ${t.pairs} pair(s); ` +
        `engine-reported tg over ${t.genTokens} tokens, pp over ~${t.promptTokens} tokens` +
        (t.depth ? ` after a cached ~${t.depth}-token prefix; ` : '; ') +
        'ratio = median of variant ÷ baseline per pair:',
    );
    for (const v of t.variants) {
      out.push(
        `  ${v.name.padEnd(30)} ${v.change.padEnd(34)} ` +
          `tg ${fmt(v.tgRatio, 2)}× (${fmt(v.tgMedian, 2)} tok/s)  ` +
          `pp ${fmt(v.ppRatio, 2)}× (${fmt(v.ppMedian)} tok/s)  ` +
          `ready ${(v.loadMs / 1000).toFixed(1)} s (rendered ${(t.baselineLoadMs / 1000).toFixed(1)} s)  ` +
          `others ${fmt(v.othersCoresMean, 2)} cores  ${v.note}`,
      );
    }
  }
  for (const n of r.notes) if (n !== r.quiet.verdict) out.push(`note: ${n}`);
  return `${out.join('\n')}\n`;
}

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const esc = (s: string) => s.replace(/\|/g, '\\|');

export function formatMarkdown(r: BenchReport): string {
  const h = header(r);
  const out = [
    `**${esc(h[0]!)}**`,
    '',
    `- ${esc(h[1]!)}`,
    `- ${esc(h[2]!)}`,
    `- ${r.quiet.quiet ? '' : '⚠ '}${esc(h[3]!)}`,
    '',
    ...(r.figures.length
      ? ["| # | figure | value | measurements | others' CPU during it |", '|---|---|---:|---|---|']
      : []),
    ...r.figures.map((f) => {
      const words = f.skipped ? `skipped: ${f.skipped}` : f.detail + (f.verdict ? ` → **${f.verdict}**` : '');
      return `| ${f.n} | ${esc(f.title)} | ${num(f)} | ${esc(words)} | ${loadCell(f, r.quiet.cpus)} |`;
    }),
  ];
  if (r.tuning) {
    const t = r.tuning;
    out.push(
      '',
      'Engine flag variants: each llama-server variant ran beside the rendered one and requests alternated ' +
        `between them (${t.pairs} pair(s)); ratios are medians of variant ÷ rendered per pair, ` +
        `from the engine's own timings (generation over ${t.genTokens} tokens, prompt over ~${t.promptTokens}` +
        (t.depth ? `, both continuing a cached ~${t.depth}-token prefix). ` : '). ') +
        'A variant is better/worse only when every pair agrees and the median moves more than 10 %.',
      '',
      "| variant | flags | generation × rendered | prompt × rendered | ready (s) | others' CPU | verdict |",
      '|---|---|---:|---:|---:|---:|---|',
      ...t.variants.map(
        (v) =>
          `| ${v.name} | \`${v.change}\` | ${fmt(v.tgRatio, 2)} | ${fmt(v.ppRatio, 2)} | ` +
          `${(v.loadMs / 1000).toFixed(1)} (rendered ${(t.baselineLoadMs / 1000).toFixed(1)}) | ` +
          `${fmt(v.othersCoresMean, 2)} | ${esc(v.note)} |`,
      ),
    );
  }
  const notes = r.notes.filter((n) => n !== r.quiet.verdict);
  if (notes.length) out.push('', ...notes.map((n) => `- ${esc(n)}`));
  return `${out.join('\n')}\n`;
}

export function formatJson(r: BenchReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}
