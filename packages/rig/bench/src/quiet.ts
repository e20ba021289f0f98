// Is the machine quiet? Samples /proc/loadavg and /proc/stat before and during the run and
// subtracts the CPU time of our own process tree (this process, llama-server, llama-bench, nginx,
// wget, workers), so what is left is CPU busy NOT caused by the benchmark.
import { readFileSync, readdirSync } from 'node:fs';
import { cpus } from 'node:os';

export interface CpuCounters {
  /** ms (performance.now) when read. */
  at: number;
  /** All jiffies over all CPUs (user … steal). */
  total: number;
  /** Busy jiffies (everything but idle and iowait). */
  busy: number;
  steal: number;
  /** Jiffies used by our process tree, reaped children included. */
  ours: number;
  load1: number;
}

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime + cutime + cstime. */
  jiffies: number;
}

function readProcStat(pid: string): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: fields start after the LAST ')'.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // f[0]=state f[1]=ppid … f[11]=utime f[12]=stime f[13]=cutime f[14]=cstime
    return {
      pid: Number(pid),
      ppid: Number(f[1]),
      jiffies: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]),
    };
  } catch {
    return null; // exited meanwhile
  }
}

/** Jiffies of `root` and every live descendant (children that exited are in their parent's cutime/cstime). */
export function treeJiffies(root = process.pid): number {
  const all: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readProcStat(name);
    if (s) all.push(s);
  }
  const children = new Map<number, ProcStat[]>();
  for (const s of all) {
    const list = children.get(s.ppid);
    if (list) list.push(s);
    else children.set(s.ppid, [s]);
  }
  const self = all.find((s) => s.pid === root);
  let sum = 0;
  const stack = self ? [self] : [];
  while (stack.length) {
    const s = stack.pop()!;
    sum += s.jiffies;
    stack.push(...(children.get(s.pid) ?? []));
  }
  return sum;
}

export function readCounters(): CpuCounters {
  // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = v;
  const total = user + nice + system + idle + iowait + irq + softirq + steal;
  const load1 = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  return { at: performance.now(), total, busy: total - idle - iowait, steal, ours: treeJiffies(), load1 };
}

/** What happened between two readings. */
export interface CpuWindow {
  seconds: number;
  /** Cores kept busy by processes that are not ours (0 … CPUs). */
  othersCores: number;
  /** Cores used by our own tree. */
  oursCores: number;
  /** Cores stolen by the hypervisor. */
  stealCores: number;
  /** Highest 1-minute load average seen at either end. */
  load1: number;
}

export function windowBetween(a: CpuCounters, b: CpuCounters, nCpu = cpus().length): CpuWindow {
  const dTotal = Math.max(1, b.total - a.total);
  const perCore = dTotal / nCpu; // jiffies of one core over the window
  const others = Math.max(0, b.busy - a.busy - (b.ours - a.ours));
  return {
    seconds: (b.at - a.at) / 1000,
    othersCores: others / perCore,
    oursCores: Math.max(0, b.ours - a.ours) / perCore,
    stealCores: Math.max(0, b.steal - a.steal) / perCore,
    load1: Math.max(a.load1, b.load1),
  };
}

export interface PhaseLoad {
  phase: string;
  seconds: number;
  othersCoresMean: number;
  othersCoresMax: number;
  load1Max: number;
}

export interface QuietReport {
  cpus: number;
  /** Before anything of ours started: a few seconds of sampling. */
  before: CpuWindow;
  /** The whole run. */
  during: {
    seconds: number;
    othersCoresMean: number;
    othersCoresMax: number;
    load1Max: number;
    stealCoresMean: number;
  };
  phases: PhaseLoad[];
  quiet: boolean;
  /** One line for the table, e.g. "machine NOT quiet: load 5.3, other processes used 1.6 of 2 cores". */
  verdict: string;
  thresholds: { othersCoresMean: number; othersCoresMax: number; load1Before: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Samples every `intervalMs` from start() to stop(); `mark(phase)` names the current figure so each
 * one gets its own load. Not quiet when other processes used more than 10 % of the CPUs on average,
 * more than 25 % in any sample, or the load average before the start was above 0.5 per CPU.
 */
export class QuietMonitor {
  readonly nCpu = cpus().length;
  private samples: Array<{ c: CpuCounters; phase: string }> = [];
  private timer: NodeJS.Timeout | undefined;
  private phase = 'setup';
  private beforeWindow: CpuWindow | undefined;

  constructor(private intervalMs = 2000) {}

  /** Measures the machine for `ms` before anything of ours runs, then keeps sampling. */
  async start(ms = 3000): Promise<CpuWindow> {
    const a = readCounters();
    await sleep(ms);
    const b = readCounters();
    this.beforeWindow = windowBetween(a, b, this.nCpu);
    this.samples.push({ c: b, phase: this.phase });
    this.timer = setInterval(() => this.samples.push({ c: readCounters(), phase: this.phase }), this.intervalMs);
    this.timer.unref();
    return this.beforeWindow;
  }

  mark(phase: string): void {
    this.samples.push({ c: readCounters(), phase: this.phase });
    this.phase = phase;
  }

  /** Load of the current state so far (for progress lines). */
  current(): CpuWindow | undefined {
    const n = this.samples.length;
    if (n < 2) return undefined;
    return windowBetween(this.samples[n - 2]!.c, this.samples[n - 1]!.c, this.nCpu);
  }

  stop(): QuietReport {
    if (this.timer) clearInterval(this.timer);
    this.samples.push({ c: readCounters(), phase: this.phase });
    const before = this.beforeWindow ?? {
      seconds: 0,
      othersCores: 0,
      oursCores: 0,
      stealCores: 0,
      load1: readCounters().load1,
    };
    const windows: Array<{ w: CpuWindow; phase: string }> = [];
    for (let i = 1; i < this.samples.length; i++) {
      const w = windowBetween(this.samples[i - 1]!.c, this.samples[i]!.c, this.nCpu);
      if (w.seconds > 0.2) windows.push({ w, phase: this.samples[i - 1]!.phase });
    }
    const weighted = (ws: CpuWindow[], f: (w: CpuWindow) => number) => {
      const secs = ws.reduce((s, w) => s + w.seconds, 0);
      return secs > 0 ? ws.reduce((s, w) => s + f(w) * w.seconds, 0) / secs : 0;
    };
    const all = windows.map((x) => x.w);
    const during = {
      seconds: all.reduce((s, w) => s + w.seconds, 0),
      othersCoresMean: weighted(all, (w) => w.othersCores),
      othersCoresMax: Math.max(0, ...all.map((w) => w.othersCores)),
      load1Max: Math.max(before.load1, ...all.map((w) => w.load1)),
      stealCoresMean: weighted(all, (w) => w.stealCores),
    };
    const phases: PhaseLoad[] = [];
    for (const name of [...new Set(windows.map((x) => x.phase))]) {
      const ws = windows.filter((x) => x.phase === name).map((x) => x.w);
      phases.push({
        phase: name,
        seconds: ws.reduce((s, w) => s + w.seconds, 0),
        othersCoresMean: weighted(ws, (w) => w.othersCores),
        othersCoresMax: Math.max(0, ...ws.map((w) => w.othersCores)),
        load1Max: Math.max(0, ...ws.map((w) => w.load1)),
      });
    }
    const thresholds = {
      othersCoresMean: 0.1 * this.nCpu,
      othersCoresMax: 0.25 * this.nCpu,
      load1Before: 0.5 * this.nCpu,
    };
    const reasons: string[] = [];
    if (before.load1 > thresholds.load1Before) reasons.push(`load average ${before.load1.toFixed(2)} before the start`);
    if (Math.max(before.othersCores, during.othersCoresMean) > thresholds.othersCoresMean)
      reasons.push(
        `other processes used ${Math.max(before.othersCores, during.othersCoresMean).toFixed(2)} ` +
          `of ${this.nCpu} cores on average`,
      );
    else if (during.othersCoresMax > thresholds.othersCoresMax)
      reasons.push(`other processes peaked at ${during.othersCoresMax.toFixed(2)} of ${this.nCpu} cores`);
    const quiet = reasons.length === 0;
    const load = `load ${before.load1.toFixed(2)} before, up to ${during.load1Max.toFixed(2)} during`;
    const verdict = quiet
      ? `machine quiet: ${load}; other processes used ${during.othersCoresMean.toFixed(2)} of ${this.nCpu} cores`
      : `machine NOT quiet: ${load}; ${reasons.join('; ')} — ratios are comparable only within this run`;
    return { cpus: this.nCpu, before, during, phases, quiet, verdict, thresholds };
  }
}
