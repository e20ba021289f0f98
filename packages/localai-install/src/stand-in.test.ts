/**
 * The stand-in `local-ai` of the test image, run for real as a process: it must fail in the way
 * its mode file says, never listen, and say it is a stand-in.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { appliancePaths } from '@slm-copilot/context-schema';
import { createLogger } from '@slm-copilot/task-kit';
import { installLocalAiStandIn, STAND_IN_MARKER, standInModeFile } from './stand-in.js';

const roots: string[] = [];
afterEach(async () => {
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});

async function installed() {
  const root = await mkdtemp(path.join(tmpdir(), 'stand-in-'));
  roots.push(root);
  const paths = appliancePaths(root);
  const result = await installLocalAiStandIn(paths, createLogger({ quiet: true }));
  return { paths, result };
}

/** Runs the stand-in like the unit does (`local-ai run`); resolves with its exit, or 'running' after `waitMs`. */
function run(binary: string, waitMs: number): Promise<{ exit: number | 'running'; stderr: string; cpuTicks: number }> {
  return new Promise((resolve) => {
    const child = spawn(binary, ['run'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(async () => {
      const stat = await readFile(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      child.kill('SIGKILL');
      resolve({ exit: 'running', stderr, cpuTicks: Number(fields[11]) + Number(fields[12]) });
    }, waitMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ exit: code ?? -1, stderr, cpuTicks: 0 });
    });
  });
}

describe('the LocalAI stand-in', () => {
  it('is installed executable at the LocalAI path, says it is a stand-in, defaults to exit', async () => {
    const { paths, result } = await installed();
    expect(result.binary).toBe(paths.engine.localaiBinary);
    expect((await stat(result.binary)).mode & 0o777).toBe(0o755);
    const text = await readFile(result.binary, 'utf8');
    expect(text.split('\n').slice(0, 3).join('\n')).toContain(
      `${STAND_IN_MARKER}: LocalAI cannot be downloaded on the machines that build the test image`,
    );
    expect((await readFile(standInModeFile(paths), 'utf8')).trim()).toBe('exit');
  });

  it('mode exit: exits at once with status 1 and an error naming it a stand-in', async () => {
    const { result } = await installed();
    const r = await run(result.binary, 10_000);
    expect(r.exit).toBe(1);
    expect(r.stderr).toContain(STAND_IN_MARKER);
  });

  it('mode hang: keeps running without using CPU; a re-install keeps the chosen mode', async () => {
    const { paths, result } = await installed();
    await writeFile(standInModeFile(paths), 'hang\n');
    await installLocalAiStandIn(paths, createLogger({ quiet: true }));
    expect((await readFile(standInModeFile(paths), 'utf8')).trim()).toBe('hang');
    const r = await run(result.binary, 1500);
    expect(r.exit).toBe('running');
    // a few ticks of start-up at most (sh + exec sleep); a busy loop would show ~150 in 1.5 s
    expect(r.cpuTicks).toBeLessThan(20);
  });

  it('an unknown mode exits 2 naming the mode file', async () => {
    const { paths, result } = await installed();
    await writeFile(standInModeFile(paths), 'serve\n');
    const r = await run(result.binary, 10_000);
    expect(r.exit).toBe(2);
    expect(r.stderr).toContain(`unknown mode 'serve' in ${standInModeFile(paths)}`);
  });
});
