// Figure 6 reuses model-fetch's own benchmark (packages/model-fetch/bench/fetch-vs-wget.ts): a random
// file served by the test bed's mirror over loopback, fetchModel vs `wget -c` then `sha256sum`.
// It runs as a child process (its own event loop, as it was written) and its table is parsed here.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** packages/model-fetch in this workspace (null outside it, e.g. from a bundled slm-bench). */
export function modelFetchBenchDir(): string | null {
  const here = path.dirname(fileURLToPath(import.meta.url)); // packages/rig/bench/src or packages/rig/bench/dist
  const dir = path.resolve(here, '../../../model-fetch');
  return existsSync(path.join(dir, 'bench/fetch-vs-wget.ts')) ? dir : null;
}

/** Parses task-kit's formatDuration ("850 ms", "12.3 s", "2 min 5 s") back to ms. */
export function parseDuration(text: string): number {
  const t = text.trim();
  let m = /^(\d+(?:\.\d+)?) ms$/.exec(t);
  if (m) return Number(m[1]);
  m = /^(\d+(?:\.\d+)?) s$/.exec(t);
  if (m) return Number(m[1]) * 1000;
  m = /^(\d+) min (\d+) s$/.exec(t);
  if (m) return Number(m[1]) * 60_000 + Number(m[2]) * 1000;
  return NaN;
}

export interface FetchBenchResult {
  sizeMb: number;
  /** Every timed line of the table: label → ms. */
  rowsMs: Record<string, number>;
  wgetThenSha256sumMs: number;
  fetchModelMs: number;
  /** fetchModel (hash stream, the default) ÷ (wget -c, then sha256sum). */
  ratio: number;
  output: string;
}

/** Parses fetch-vs-wget's stdout table. */
export function parseFetchBench(stdout: string, sizeMb: number): FetchBenchResult {
  const rowsMs: Record<string, number> = {};
  for (const line of stdout.split('\n')) {
    const m = /^ {2}(\S.*?)\s{2,}(\d+(?:\.\d+)? m?s|\d+ min \d+ s)(?:\s|$)/.exec(line);
    if (m) rowsMs[m[1]!.trim()] = parseDuration(m[2]!);
  }
  const wget = rowsMs['wget -c, then sha256sum'];
  const ours = rowsMs['fetchModel (hash stream)'];
  if (wget === undefined || ours === undefined)
    throw new Error(`fetch-vs-wget printed no result table:\n${stdout.slice(-1500)}`);
  return { sizeMb, rowsMs, wgetThenSha256sumMs: wget, fetchModelMs: ours, ratio: ours / wget, output: stdout };
}

export async function runFetchBench(opts: {
  sizeMb: number;
  dir?: string;
  log?: (s: string) => void;
}): Promise<FetchBenchResult> {
  const pkg = modelFetchBenchDir();
  if (!pkg) throw new Error("model-fetch's bench/fetch-vs-wget.ts is not beside this package (run from the workspace)");
  const args = [
    '--conditions=source',
    '--import',
    'tsx',
    path.join(pkg, 'bench/fetch-vs-wget.ts'),
    '--size-mb',
    String(opts.sizeMb),
    '--runs',
    '1',
  ];
  if (opts.dir) args.push('--dir', opts.dir);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: pkg, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      for (const l of d.toString().split('\n'))
        if (l.trim() && !/MaxListenersExceededWarning|--trace-warnings/.test(l))
          opts.log?.(`  [model-fetch bench] ${l.trim()}`);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`model-fetch bench exited ${code}:\n${err.slice(-1500)}`));
      try {
        resolve(parseFetchBench(out, opts.sizeMb));
      } catch (e) {
        reject(e);
      }
    });
  });
}
