// Benchmark (not a test): fetchModel vs `wget -c` followed by a separate `sha256sum`, on one large
// file served by the test bed's mirror (in its own process) over loopback.
//
//   pnpm --filter @slm-copilot/model-fetch bench [-- --size-mb 1536 --runs 1 --rate-mb 0 --dir /tmp]
//
// --rate-mb N throttles the mirror to N MB/s to imitate a real link (0 = loopback speed).
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { createLogger, formatDuration } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { fetchModel, type HashMode } from '../src/fetch.js';
import { ggufHeader } from '../test-support/index.js';

const { values } = parseArgs({
  args: process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--')), // `pnpm bench -- …` passes the "--" on
  options: {
    'size-mb': { type: 'string', default: '1536' },
    runs: { type: 'string', default: '1' },
    'rate-mb': { type: 'string', default: '0' },
    dir: { type: 'string', default: tmpdir() },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write('fetch-vs-wget [--size-mb 1536] [--runs 1] [--rate-mb 0 (loopback speed)] [--dir DIR]\n');
  process.exit(0);
}
const sizeMb = Number(values['size-mb']);
const runs = Number(values.runs);
const rateMb = Number(values['rate-mb']);
const MiB = 1024 * 1024;
const size = sizeMb * MiB;
const sh = $({ quiet: true });

const work = await mkdtemp(path.join(values.dir!, 'model-fetch-bench-'));
const here = path.dirname(fileURLToPath(import.meta.url));
let server: ReturnType<typeof spawn> | undefined;

try {
  // 1. A random file of the requested size (behind a GGUF header), hashed while it is written.
  const src = path.join(work, 'src');
  await sh`mkdir -p ${src}`;
  const t0 = performance.now();
  const hash = createHash('sha256');
  const fh = await open(path.join(src, 'model.gguf'), 'w');
  const buf = Buffer.allocUnsafe(64 * MiB);
  for (let done = 0; done < size;) {
    const n = Math.min(buf.length, size - done);
    randomFillSync(buf, 0, n);
    // a GGUF header first: fetchModel parses a *.gguf destination before installing it
    if (done === 0) ggufHeader().copy(buf, 0);
    hash.update(buf.subarray(0, n));
    await fh.write(buf, 0, n);
    done += n;
  }
  await fh.close();
  const sha256 = hash.digest('hex');
  console.error(
    `source: ${sizeMb} MiB random file in ${formatDuration(performance.now() - t0)} (sha256 ${sha256.slice(0, 16)}…)`,
  );
  await sh`cat ${path.join(src, 'model.gguf')} > /dev/null`; // both contenders start with the source in the page cache

  // 2. The mirror, in its own process.
  const tsxArgs = ['--conditions=source', '--import', 'tsx', path.join(here, 'mirror-server.ts'), src];
  if (rateMb > 0) tsxArgs.push('model.gguf', String(rateMb * 1e6));
  server = spawn(process.execPath, tsxArgs, { cwd: path.join(here, '..'), stdio: ['pipe', 'pipe', 'inherit'] });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    server!.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
    server!.once('exit', (c) => reject(new Error(`mirror exited with ${c}`)));
  });
  const url = `${baseUrl}/model.gguf`;
  const quiet = createLogger({ level: 'warn' });

  const results: Record<string, number[]> = {};
  const phases: Record<string, Array<Array<{ name: string; ms: number }>>> = {};
  const record = (k: string, ms: number) => (results[k] ??= []).push(ms);

  const baseline = async (i: number) => {
    const dest = path.join(work, `wget-${i}.gguf`);
    const t = performance.now();
    await sh`wget -c -q -O ${dest} ${url}`;
    const tDownload = performance.now() - t;
    const out = (await sh`sha256sum ${dest}`).stdout.split(' ')[0];
    const tHash = performance.now() - t;
    if (out !== sha256) throw new Error('wget + sha256sum: wrong sha256');
    await sh`sync ${dest}`;
    const tSync = performance.now() - t;
    record('wget -c, then sha256sum', tHash);
    record('  (its download part)', tDownload);
    record('wget -c, sha256sum, then sync FILE', tSync);
    await rm(dest, { force: true });
  };
  const ours = async (i: number, hashMode: HashMode) => {
    const dest = path.join(work, `ours-${hashMode}-${i}.gguf`);
    const t = performance.now();
    const r = await fetchModel({ urls: [url], sha256, size, dest, log: quiet, progress: 'none', hashMode });
    const ms = performance.now() - t;
    const fsync = r.phases.find((p) => p.name === 'install')?.ms ?? 0;
    record(`fetchModel (hash ${hashMode})`, ms);
    record(`fetchModel (hash ${hashMode}) minus its fsync`, ms - fsync);
    (phases[hashMode] ??= []).push(r.phases);
    await rm(dest, { force: true });
    await rm(`${dest}.manifest.json`, { force: true });
  };

  // The alternative design, for comparison only: wget writes to a pipe, Node hashes and writes the
  // file. (Not used by fetchModel: `-O -` loses wget's own -c/--tries resume of the file.)
  const piped = async (i: number) => {
    const dest = path.join(work, `piped-${i}.gguf`);
    const t = performance.now();
    const h = createHash('sha256');
    const child = spawn('wget', ['-q', '-O', '-', url], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const tee = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        h.update(chunk);
        cb(null, chunk);
      },
    });
    await pipeline(child.stdout, tee, createWriteStream(dest, { highWaterMark: 8 * MiB }));
    if ((await exited) !== 0 || h.digest('hex') !== sha256) throw new Error('wget -O - | node: failed or wrong sha256');
    record('wget -O - | node (hash + write), no fsync', performance.now() - t);
    await rm(dest, { force: true });
  };

  for (let i = 0; i < runs; i++) {
    // alternate the order so that neither side always runs on a warmer machine
    if (i % 2 === 0) {
      await baseline(i);
      await ours(i, 'stream');
      await ours(i, 'after');
      await piped(i);
    } else {
      await piped(i);
      await ours(i, 'after');
      await ours(i, 'stream');
      await baseline(i);
    }
  }

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ref = median(results['wget -c, then sha256sum']!);
  const load = loadavg()[0]!.toFixed(2);
  const sha = (await readFile('/proc/cpuinfo', 'utf8')).includes(' sha_ni') ? 'with SHA-NI' : 'no SHA-NI';
  console.log(
    `\n${sizeMb} MiB over loopback${rateMb > 0 ? ` throttled to ${rateMb} MB/s` : ''}, ${runs} run(s), median; ` +
      `${cpus().length} CPUs (${sha}), load ${load}`,
  );
  for (const [k, xs] of Object.entries(results)) {
    const m = median(xs);
    console.log(
      `  ${k.padEnd(46)} ${formatDuration(m).padStart(9)}  ` +
        (k.startsWith('  ') ? '' : `ratio to wget+sha256sum: ${(m / ref).toFixed(2)}`),
    );
  }
  for (const [mode, list] of Object.entries(phases)) {
    console.log(
      `  phases of fetchModel (hash ${mode}, run 1): ` +
        list[0]!.map((p) => `${p.name} ${formatDuration(p.ms)}`).join(', '),
    );
  }
} finally {
  server?.stdin?.end();
  await rm(work, { recursive: true, force: true });
}
