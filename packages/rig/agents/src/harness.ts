// Runs one agent command the way the suite needs it: its own HOME (a temp dir), a clean environment
// (nothing of ours leaks in: no proxy, no key, no token), a time bound, and nothing left behind. Every
// process the agent starts inherits a marker variable; after the run, processes that still carry it (a
// detached daemon such as Cline's hub escapes the process group) are found in /proc, ended and reported.
// Inside runSandboxed(sandbox, …), every run is in the sandbox (netns.ts) and returns the connections it
// attempted.
import { AsyncLocalStorage } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { reapOnExit } from '@slm-copilot/task-kit';
import { parseAttempts, type Attempt } from './connections.js';
import type { DnsQuery } from './dns-catcher.js';
import type { Sandbox } from './netns.js';

const MARKER = 'SLM_COPILOT_AGENT_RUN';

export interface AgentHome {
  /** The agent's HOME. */
  home: string;
  /** An empty working directory inside it (the agent's cwd). */
  work: string;
  /** Removes the HOME (SLM_COPILOT_TESTBED_KEEP_TEMP=1 keeps it). */
  remove(): void;
}

/** A fresh HOME for one agent, removed by remove() or when the process exits. */
export async function agentHome(tag: string): Promise<AgentHome> {
  const home = await mkdtemp(path.join(tmpdir(), `slm-agent-${tag}-`));
  const work = path.join(home, 'work');
  await mkdir(work);
  await mkdir(path.join(home, 'tmp'));
  const keep = process.env.SLM_COPILOT_TESTBED_KEEP_TEMP === '1';
  const rm = () => {
    if (!keep) rmSync(home, { recursive: true, force: true });
  };
  const unregister = reapOnExit(rm);
  return {
    home,
    work,
    remove: () => {
      rm();
      unregister();
    },
  };
}

/**
 * The whole environment an agent gets: HOME and the XDG directories inside it, PATH with this Node
 * first (the agents' launchers are `#!/usr/bin/env node`), the CA the way users are told to trust it
 * (NODE_EXTRA_CA_CERTS; Codex reads CODEX_CA_CERTIFICATE instead), no colours, plus `extra`.
 */
export function agentEnv(h: AgentHome, caFile: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: [path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':'),
    HOME: h.home,
    XDG_CONFIG_HOME: path.join(h.home, '.config'),
    XDG_CACHE_HOME: path.join(h.home, '.cache'),
    XDG_DATA_HOME: path.join(h.home, '.local/share'),
    XDG_STATE_HOME: path.join(h.home, '.local/state'),
    TMPDIR: path.join(h.home, 'tmp'),
    LANG: 'C.UTF-8',
    TERM: 'dumb',
    NO_COLOR: '1',
    NODE_EXTRA_CA_CERTS: caFile,
    ...extra,
  };
}

export interface RunOptions {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** The bound: the process group is ended (TERM, then KILL 5 s later) when it is reached. */
  timeoutMs: number;
}

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  timedOut: boolean;
  /** Command lines of processes that outlived the agent (outside its process group) and were ended. */
  leftovers: string[];
  /** In a sandbox: every connection the run's processes attempted (connections.ts); otherwise undefined. */
  attempts?: Attempt[];
  /** In a sandbox: the host names looked up during the run (the sandbox's DNS catcher); otherwise undefined. */
  lookups?: DnsQuery[];
}

const sandboxes = new AsyncLocalStorage<Sandbox>();

/** Runs `fn` with every runAgent call it makes (however deep) inside `sandbox`, traced. */
export function runSandboxed<T>(sandbox: Sandbox, fn: () => Promise<T>): Promise<T> {
  return sandboxes.run(sandbox, fn);
}

/** Sends `signal` to a process group or a process; one already gone is fine. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/** Processes whose environment carries `MARKER=<id>`, with their command lines. */
export async function markedProcesses(id: string): Promise<{ pid: number; cmdline: string }[]> {
  const needle = `\0${MARKER}=${id}\0`;
  const found: { pid: number; cmdline: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = `\0${await readFile(`/proc/${entry}/environ`, 'latin1')}`;
      if (!env.includes(needle)) continue;
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      found.push({ pid: Number(entry), cmdline });
    } catch {
      /* exited meanwhile, or a kernel thread */
    }
  }
  return found;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pids whose command line mentions `needle` (the tracer of a run: its record file). */
async function processesMentioning(needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(needle)) found.push(Number(entry));
  }
  return found;
}

/**
 * The record of a traced run, once its tracer is done (it ends by itself when the last traced process
 * is gone; one still there after 10 s is told to detach, which also writes out its record).
 */
async function finishTrace(traceFile: string): Promise<Attempt[]> {
  for (let i = 0; i < 100 && (await processesMentioning(traceFile)).length > 0; i++) await sleep(100);
  for (const pid of await processesMentioning(traceFile)) signal(pid, 'SIGTERM');
  for (let i = 0; i < 30 && (await processesMentioning(traceFile)).length > 0; i++) await sleep(100);
  for (const pid of await processesMentioning(traceFile)) signal(pid, 'SIGKILL');
  const record = await readFile(traceFile, 'utf8').catch(() => '');
  await rm(traceFile, { force: true });
  return parseAttempts(record);
}

/** The command, arguments and environment to spawn: as given, or in the sandbox under its tracer. */
function launch(opts: RunOptions, id: string, sandbox: Sandbox | undefined, traceFile: string) {
  if (!sandbox) return { command: opts.command, args: opts.args, env: { ...opts.env, [MARKER]: id } };
  const [command, ...prefix] = sandbox.wrap(traceFile, { [MARKER]: id });
  return { command: command!, args: [...prefix, opts.command, ...opts.args], env: opts.env };
}

/** Ends every marked process (TERM, then KILL), and fails if one survives. Returns their command lines. */
export async function endMarked(id: string): Promise<string[]> {
  const left = await markedProcesses(id);
  for (const p of left) signal(p.pid, 'SIGTERM');
  for (let i = 0; i < 30 && (await markedProcesses(id)).length > 0; i++) await sleep(100);
  for (const p of await markedProcesses(id)) signal(p.pid, 'SIGKILL');
  await sleep(100);
  const still = await markedProcesses(id);
  if (still.length > 0) {
    throw new Error(`processes survived SIGKILL: ${still.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}`);
  }
  return left.map((p) => p.cmdline);
}

/**
 * Runs the command in its own process group with `env` only (plus the marker), stdin closed, within
 * `timeoutMs`; then ends the group and any marked process outside it. Never throws for the agent's
 * own failure: the exit code, output and wall time are returned.
 */
export async function runAgent(opts: RunOptions): Promise<RunResult> {
  const id = randomUUID();
  const sandbox = sandboxes.getStore();
  const traceFile = path.join(tmpdir(), `slm-agent-run-${id}.strace`);
  const run = launch(opts, id, sandbox, traceFile);
  const lookups0 = sandbox?.dns.queries.length ?? 0;
  const started = performance.now();
  const child = spawn(run.command, run.args, {
    cwd: opts.cwd,
    env: run.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const pgid = child.pid;
  const unregister = reapOnExit(() => {
    if (pgid) signal(-pgid, 'SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let timedOut = false;
  let killer: NodeJS.Timeout | undefined;
  const bound = setTimeout(() => {
    timedOut = true;
    if (pgid) signal(-pgid, 'SIGTERM');
    killer = setTimeout(() => pgid && signal(-pgid, 'SIGKILL'), 5000);
  }, opts.timeoutMs);
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const [exitCode, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.on('error', (e) => {
      stderr += `\n${e.message}`;
      resolve([null, null]);
    });
    child.on('exit', (code, s) => resolve([code, s]));
  });
  const wallMs = Math.round(performance.now() - started);
  // A daemon that inherited stdout keeps the pipe open: read what is there, then stop waiting.
  await Promise.race([closed, sleep(2000)]);
  child.stdout.destroy();
  child.stderr.destroy();
  clearTimeout(bound);
  clearTimeout(killer);
  if (pgid) signal(-pgid, 'SIGKILL');
  unregister();
  const leftovers = await endMarked(id);
  const attempts = sandbox ? await finishTrace(traceFile) : undefined;
  const lookups = sandbox?.dns.queries.slice(lookups0);
  return { exitCode, signal: sig, stdout, stderr, wallMs, timedOut, leftovers, attempts, lookups };
}
