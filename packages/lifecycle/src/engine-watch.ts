import { readFile } from 'node:fs/promises';
import { formatDuration } from '@slm-copilot/task-kit';

/** What systemd says about a unit (`systemctl show`), or what a test double says in its place. */
export interface UnitStatus {
  /** active, activating, deactivating, failed, inactive, reloading. */
  activeState: string;
  /** running, auto-restart, dead, exited, … */
  subState: string;
  /** success, exit-code, signal, core-dump, start-limit-hit, … */
  result: string;
  /** Automatic restarts since the unit was last started by hand (systemd NRestarts). */
  restarts: number;
  /** Every process of the unit (its cgroup): LocalAI loads the model in a child backend process. */
  pids: number[];
}

/**
 * Counters that grow while a process works: CPU time (children reaped included), bytes read by
 * read() and from storage (page faults of an mmap'd model included), major faults.
 */
export interface ProcessProgress {
  cpuTicks: number;
  readChars: number;
  readBytes: number;
  majorFaults: number;
}

/** /proc/<pid>/stat + /proc/<pid>/io; null when the process is gone. Unreadable io counts as 0. */
export async function readProcessProgress(pid: number, procRoot = '/proc'): Promise<ProcessProgress | null> {
  let stat: string;
  try {
    stat = await readFile(`${procRoot}/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // fields after "(comm) ": index 0 is field 3 (state); majflt is field 12, utime..cstime 14..17
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const io = await readFile(`${procRoot}/${pid}/io`, 'utf8').catch(() => '');
  const ioField = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(io)?.[1] ?? 0);
  return {
    cpuTicks: f[11]! + f[12]! + f[13]! + f[14]!,
    readChars: ioField('rchar'),
    readBytes: ioField('read_bytes'),
    majorFaults: f[9]!,
  };
}

/** Everything the watcher looks at, injectable: the real one is systemd + /proc + the gateway's /readyz. */
export interface EngineProbe {
  status(): Promise<UnitStatus>;
  progress(pid: number): Promise<ProcessProgress | null>;
  /** HTTP status of the gateway's /readyz (0: no answer). */
  readyz(): Promise<number>;
}

/**
 * The bounds that tell "still loading" from "failed" (README: "Engine fallback"):
 * - failed at once: the unit is failed, or systemd restarted it `maxRestarts` times (crash loop);
 * - no progress: none of the unit's processes gained CPU time, bytes read or major faults for
 *   `noProgressMs` while /readyz was not 200 — a model that is loading reads the disk or computes;
 * - `timeoutMs`: still progressing but not ready at that bound; the engine is left running.
 */
export interface WatchBounds {
  timeoutMs: number;
  noProgressMs: number;
  maxRestarts: number;
  pollMs: number;
}

export const DEFAULT_WATCH_BOUNDS: Omit<WatchBounds, 'timeoutMs'> = {
  noProgressMs: 120_000,
  maxRestarts: 3,
  pollMs: 1000,
};

export type WatchOutcome =
  | { ready: true; tookMs: number }
  | { ready: false; failure: 'exited' | 'no-progress' | 'timeout'; reason: string; tookMs: number };

/** A fingerprint that changes whenever a process appears or any counter of a process grows. */
function fingerprint(samples: Array<[number, ProcessProgress | null]>): string {
  return samples
    .filter((s): s is [number, ProcessProgress] => s[1] !== null)
    .map(([pid, p]) => `${pid}:${p.cpuTicks}:${p.readChars}:${p.readBytes}:${p.majorFaults}`)
    .join(' ');
}

/** Why a unit's state alone says the engine failed (null: it may still come up). */
export function unitFailure(status: UnitStatus, maxRestarts: number): string | null {
  if (status.activeState === 'failed') {
    return `exited: the unit failed (${status.result}) after ${status.restarts} restart(s)`;
  }
  if (status.restarts >= maxRestarts) {
    const state = `${status.subState}, last result ${status.result}`;
    return `exited: crash loop, restarted ${status.restarts} time(s) (${state})`;
  }
  if (status.activeState === 'inactive') return `exited: the engine stopped (${status.result}) and was not restarted`;
  return null;
}

export interface Clock {
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}
const realClock: Clock = { now: () => performance.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

const sample = (probe: EngineProbe, pids: number[]) =>
  Promise.all(pids.map(async (pid): Promise<[number, ProcessProgress | null]> => [pid, await probe.progress(pid)]));

/** Polls until /readyz is 200 or the engine has failed by one of the bounds; never throws. */
export async function watchEngine(
  probe: EngineProbe,
  bounds: WatchBounds,
  clock: Clock = realClock,
): Promise<WatchOutcome> {
  const started = clock.now();
  let lastPrint = '';
  let lastProgressAt = started;
  for (;;) {
    const now = clock.now();
    const tookMs = now - started;
    const lastReadyz = await probe.readyz();
    if (lastReadyz === 200) return { ready: true, tookMs };
    const status = await probe.status();
    const failed = unitFailure(status, bounds.maxRestarts);
    if (failed) return { ready: false, failure: 'exited', reason: failed, tookMs };
    // a ServiceControl that cannot tell (no systemd) leaves only /readyz and the time bound
    const print = status.activeState === 'unknown' ? String(now) : fingerprint(await sample(probe, status.pids));
    if (print !== lastPrint) {
      lastPrint = print;
      lastProgressAt = now;
    } else if (now - lastProgressAt >= bounds.noProgressMs) {
      const what = status.pids.length > 0 ? `pid ${status.pids.join(', ')}` : 'no process';
      return {
        ready: false,
        failure: 'no-progress',
        reason:
          `no progress: ${what} gained no CPU time and read no bytes for ${formatDuration(now - lastProgressAt)} ` +
          `while /readyz answered ${lastReadyz || 'nothing'}`,
        tookMs,
      };
    }
    if (tookMs >= bounds.timeoutMs) {
      const last = lastReadyz || 'no answer';
      const reason = `still loading: not ready within ${formatDuration(bounds.timeoutMs)} (last /readyz ${last})`;
      return { ready: false, failure: 'timeout', reason, tookMs };
    }
    await clock.sleep(bounds.pollMs);
  }
}
