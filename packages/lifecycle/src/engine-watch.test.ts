/**
 * The decisions that tell a loading engine from a failed one, on scripted probes and a fake clock
 * (no processes: bootstrap.test.ts runs the same decisions on real processes).
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  readProcessProgress,
  watchEngine,
  type EngineProbe,
  type ProcessProgress,
  type UnitStatus,
  type WatchBounds,
} from './engine-watch.js';

const bounds: WatchBounds = { timeoutMs: 600_000, noProgressMs: 120_000, maxRestarts: 3, pollMs: 1000 };
const running: UnitStatus = { activeState: 'active', subState: 'running', result: 'success', restarts: 0, pids: [42] };
const idle: ProcessProgress = { cpuTicks: 10, readChars: 1000, readBytes: 0, majorFaults: 5 };

/** A probe whose answers are functions of the fake time; the clock advances by each sleep. */
function scripted(
  at: (t: number) => { readyz?: number; status?: Partial<UnitStatus>; progress?: Partial<ProcessProgress> },
) {
  let t = 0;
  const probe: EngineProbe = {
    readyz: async () => at(t).readyz ?? 503,
    status: async () => ({ ...running, ...at(t).status }),
    progress: async () => ({ ...idle, ...at(t).progress }),
  };
  const clock = { now: () => t, sleep: async (ms: number) => void (t += ms) };
  return { probe, clock, time: () => t };
}

describe('watchEngine', () => {
  it('ready as soon as /readyz is 200', async () => {
    const s = scripted((t) => ({ readyz: t >= 5000 ? 200 : 503, progress: { cpuTicks: t } }));
    expect(await watchEngine(s.probe, bounds, s.clock)).toEqual({ ready: true, tookMs: 5000 });
  });

  it('a failed unit is "exited" at once', async () => {
    const s = scripted(() => ({ status: { activeState: 'failed', result: 'exit-code', restarts: 1, pids: [] } }));
    const r = await watchEngine(s.probe, bounds, s.clock);
    expect(r).toMatchObject({ ready: false, failure: 'exited' });
    expect(!r.ready && r.reason).toMatch(/^exited: the unit failed \(exit-code\)/);
  });

  it('a crash loop fails at maxRestarts, before systemd gives up', async () => {
    const s = scripted((t) => ({
      status: { activeState: 'activating', subState: 'auto-restart', restarts: Math.floor(t / 3000), pids: [] },
    }));
    const r = await watchEngine(s.probe, bounds, s.clock);
    expect(r).toMatchObject({ ready: false, failure: 'exited' });
    expect(!r.ready && r.reason).toMatch(/crash loop, restarted 3 time/);
    expect(s.time()).toBe(9000);
  });

  it('no growth of any counter for noProgressMs is "no progress"', async () => {
    const s = scripted(() => ({}));
    const r = await watchEngine(s.probe, bounds, s.clock);
    expect(r).toMatchObject({ ready: false, failure: 'no-progress' });
    expect(!r.ready && r.reason).toMatch(
      /^no progress: pid 42 gained no CPU time and read no bytes for 2 min 0 s while \/readyz answered 503$/,
    );
  });

  // each counter alone keeps a loading engine alive (mutation: drop one from the fingerprint and its case fails)
  for (const counter of ['cpuTicks', 'readChars', 'readBytes', 'majorFaults'] as const) {
    it(`growth of ${counter} alone is progress: no failure until the time bound`, async () => {
      const s = scripted((t) => ({ progress: { [counter]: Math.floor(t / 60_000) } }));
      const r = await watchEngine(s.probe, { ...bounds, timeoutMs: 900_000 }, s.clock);
      expect(r).toMatchObject({ ready: false, failure: 'timeout' });
      expect(!r.ready && r.reason).toMatch(/^still loading: not ready within 15 min/);
    });
  }

  it('progress that stops is caught noProgressMs after the last growth', async () => {
    const s = scripted((t) => ({ progress: { readBytes: Math.min(t, 300_000) } }));
    const r = await watchEngine(s.probe, bounds, s.clock);
    expect(r).toMatchObject({ ready: false, failure: 'no-progress' });
    expect(s.time()).toBe(300_000 + bounds.noProgressMs);
  });

  it('without unit status (no systemd) only /readyz and the time bound decide', async () => {
    const s = scripted(() => ({ status: { activeState: 'unknown', pids: [] } }));
    expect(await watchEngine(s.probe, { ...bounds, timeoutMs: 300_000 }, s.clock)).toMatchObject({
      ready: false,
      failure: 'timeout',
    });
  });
});

describe('readProcessProgress', () => {
  it('reads CPU time and bytes read of a real process; null once it is gone', async () => {
    // reads 8 MiB from /dev/zero, then burns CPU for a moment, then waits for stdin
    const script = [
      'import os,sys,time',
      'os.read(os.open("/dev/zero",0),8<<20)',
      't=time.time()',
      'while time.time()-t<0.3: pass',
      'print("done",flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'ignore'] });
    await new Promise((r) => child.stdout!.once('data', r));
    const p = await readProcessProgress(child.pid!);
    expect(p!.readChars).toBeGreaterThanOrEqual(8 << 20);
    expect(p!.cpuTicks).toBeGreaterThan(0);
    child.stdin!.end();
    await new Promise((r) => child.on('exit', r));
    expect(await readProcessProgress(child.pid!)).toBeNull();
  });
});
