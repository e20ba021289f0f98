// Memory read bandwidth, measured in this run: one worker thread per engine thread, each scanning
// its own large Buffer with Buffer#indexOf for a byte that is not there (glibc's vectorised memchr:
// a pure streaming read, no write, no dd). All workers start each pass together (Atomics), and the
// aggregate is total bytes ÷ the wall time of the slowest worker.
import { Worker } from 'node:worker_threads';

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
// allocUnsafeSlow + fill: real pages with data (a zero-filled calloc could map the shared zero page).
const buf = Buffer.allocUnsafeSlow(workerData.bytes);
buf.fill(7);
const go = new Int32Array(workerData.sab);
parentPort.postMessage({ ready: true });
for (let pass = 0; pass < workerData.passes; pass++) {
  Atomics.wait(go, 0, pass);
  const t0 = performance.now();
  const found = buf.indexOf(9);
  parentPort.postMessage({ pass, ms: performance.now() - t0, found });
}
`;

export interface BandwidthResult {
  workers: number;
  bytesPerWorker: number;
  passes: number;
  /** Aggregate GB/s (1e9 bytes/s) of every pass. */
  passesGBps: number[];
  /** The best pass: the bound used for figure 2. */
  bestGBps: number;
  medianGBps: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function measureReadBandwidth(opts: {
  workers: number;
  bytesPerWorker: number;
  passes: number;
}): Promise<BandwidthResult> {
  const sab = new SharedArrayBuffer(4);
  const go = new Int32Array(sab);
  const workers = Array.from(
    { length: opts.workers },
    () => new Worker(WORKER, { eval: true, workerData: { bytes: opts.bytesPerWorker, passes: opts.passes, sab } }),
  );
  const next = (w: Worker) =>
    new Promise<{ ms: number; found: number }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
  try {
    await Promise.all(workers.map(next));
    const passesGBps: number[] = [];
    for (let pass = 0; pass < opts.passes; pass++) {
      const done = Promise.all(workers.map(next));
      const t0 = performance.now();
      Atomics.store(go, 0, pass + 1);
      Atomics.notify(go, 0);
      const res = await done;
      const wall = performance.now() - t0;
      if (res.some((r) => r.found !== -1)) throw new Error('bandwidth probe: buffer content changed');
      passesGBps.push((opts.workers * opts.bytesPerWorker) / (wall / 1000) / 1e9);
    }
    return {
      workers: opts.workers,
      bytesPerWorker: opts.bytesPerWorker,
      passes: opts.passes,
      passesGBps,
      bestGBps: Math.max(...passesGBps),
      medianGBps: median(passesGBps),
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
