// One agent, one task, against one appliance: install (cached), run in a fresh HOME (in a sandbox when one
// is given: netns.ts), then collect what the appliance saw (access log lines of this agent's key, the
// engine's completion and counters), what the agent reached for (network.ts), and the figures the suite
// reports (version, endpoint, wall time, request size).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isCaFetch, type Target, type AgentRun } from './agents.js';
import { MODEL_ID, type Appliance } from './appliance.js';
import {
  countTokens,
  engineCounters,
  lastCompletion,
  parseAccessLog,
  type AccessEntry,
  type EngineCompletion,
} from './evidence.js';
import { agentHome, runSandboxed, type AgentHome } from './harness.js';
import { ensureAgent, type InstalledAgent } from './install.js';
import { describeNetwork, networkRecord, type NetworkRecord } from './network.js';
import type { Sandbox } from './netns.js';
import { type AgentName } from './pins.js';

export type Runner = (
  agent: InstalledAgent,
  h: AgentHome,
  t: Target,
  prompt: string,
  timeoutMs: number,
) => Promise<AgentRun>;

export interface Figures {
  agent: AgentName;
  /** Which run of this agent (e.g. `stock-template`), when a file runs it more than once. */
  label: string;
  version: string;
  endpoint: string;
  exitCode: number | null;
  /** The context the engine gives each request (tokens). */
  contextLength: number;
  /** Wall time of the task's run (ms), set-up commands not counted. */
  wallMs: number;
  /** How long the install took when this run needed one (0: cache hit). */
  installMs: number;
  requests: number;
  statuses: number[];
  /** Prompt tokens the engine processed for this agent's requests (/metrics: cache hits not counted). */
  promptTokens: number;
  generatedTokens: number;
  /** The last prompt in the engine's slot (/slots), as it rendered it: characters and tokens. */
  lastPromptChars: number;
  lastPromptTokens: number;
  /** The first request's size (request line, headers, body) when the access log has `request_length`. */
  requestBytes: number | null;
  /** In a sandbox: what the agent reached for (the summary in `networkSummary`). */
  network?: NetworkRecord;
  networkSummary?: string;
}

export interface Session {
  installed: InstalledAgent;
  run: AgentRun;
  /** Access log entries of this agent's key. */
  entries: AccessEntry[];
  /** Entries without a valid key (each appliance serves one agent: these are the agent's too). */
  unkeyed: AccessEntry[];
  completion: EngineCompletion | undefined;
  /** In a sandbox: every connection the run's commands attempted and every name they looked up. */
  network?: NetworkRecord;
  figures: Figures;
}

export interface SessionOptions {
  prompt: string;
  timeoutMs: number;
  /** What the agent is told the model's context is; default: the engine's context per slot (slotContext). */
  contextLength?: number;
  label?: string;
  /** Run the agent's commands in this sandbox (the appliance must serve on its address: startAppliance). */
  sandbox?: Sandbox;
}

/** The context each request gets on an engine with these arguments (`--ctx-size` split over `--parallel`). */
export function slotContext(engineArgs: readonly string[]): number {
  const value = (flag: string) => {
    const at = engineArgs.indexOf(flag);
    return at < 0 ? undefined : Number(engineArgs[at + 1]);
  };
  const ctx = value('--ctx-size');
  if (!ctx) throw new Error(`the engine's arguments have no --ctx-size: ${engineArgs.join(' ')}`);
  return Math.floor(ctx / (value('--parallel') ?? 1));
}

/** The runner's commands, in the sandbox when there is one, with the sandbox's record of them. */
async function runIn(sandbox: Sandbox | undefined, gatewayPort: number, run: () => Promise<AgentRun>) {
  if (!sandbox) return { run: await run(), network: undefined };
  const r = await runSandboxed(sandbox, run);
  const runs = [...r.setup, r.task];
  const network = networkRecord({
    attempts: runs.flatMap((x) => x.attempts ?? []),
    lookups: runs.flatMap((x) => x.lookups ?? []),
    address: sandbox.address,
    gatewayPort,
  });
  return { run: r, network };
}

/** Runs `runner` for `name` against `app` and gathers the evidence. */
export async function session(app: Appliance, name: AgentName, runner: Runner, opts: SessionOptions): Promise<Session> {
  if (opts.sandbox && !app.origin.includes(`//${opts.sandbox.address}:`)) {
    throw new Error(`the appliance serves ${app.origin}, not the sandbox's ${opts.sandbox.address}`);
  }
  const install0 = performance.now();
  const installed = await ensureAgent(name);
  const installMs = installed.cached ? 0 : Math.round(performance.now() - install0);
  const key = app.keys[name];
  if (!key) throw new Error(`the appliance has no key for ${name}`);
  const before = await engineCounters(app.engine.baseUrl);
  const h = await agentHome(name);
  try {
    const contextLength = opts.contextLength ?? slotContext(app.engineArgs);
    const target: Target = { origin: app.origin, caFile: app.caFile, key, model: MODEL_ID, contextLength };
    const { run, network } = await runIn(opts.sandbox, app.gateway.httpsPort, () =>
      runner(installed, h, target, opts.prompt, opts.timeoutMs),
    );
    const after = await engineCounters(app.engine.baseUrl);
    const log = parseAccessLog(await app.gateway.accessLog({ quietMs: 300 }));
    const entries = log.filter((e) => e.key === key.name);
    const unkeyed = log.filter((e) => e.key === '' && !isCaFetch(e));
    const completion = await lastCompletion(app.engine.baseUrl).catch(() => undefined);
    const delta = (m: string) => Math.round((after[m] ?? 0) - (before[m] ?? 0));
    const figures: Figures = {
      agent: name,
      label: opts.label ?? '',
      version: installed.version,
      endpoint: [...new Set(entries.map((e) => `${e.method} ${e.path}`))].join(', '),
      exitCode: run.task.exitCode,
      contextLength: slotContext(app.engineArgs),
      wallMs: run.task.wallMs,
      installMs,
      requests: entries.length,
      statuses: entries.map((e) => e.status),
      promptTokens: delta('prompt_tokens_total'),
      generatedTokens: delta('tokens_predicted_total'),
      lastPromptChars: completion?.prompt.length ?? 0,
      lastPromptTokens: completion ? await countTokens(app.engine.baseUrl, completion.prompt) : 0,
      requestBytes: entries[0]?.request_length ?? null,
      network,
      networkSummary: network && describeNetwork(network),
    };
    await report(figures, unkeyed);
    return { installed, run, entries, unkeyed, completion, network, figures };
  } finally {
    h.remove();
  }
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

/**
 * One line on stdout (`[agents] cline 3.0.65 POST /v1/chat/completions 12.3 s request 21.0 KB …`) and the
 * whole figures in test-results/agents-<name>[-<label>].json.
 */
async function report(f: Figures, unkeyed: AccessEntry[]): Promise<void> {
  const size =
    f.requestBytes !== null
      ? ` request ${kb(f.requestBytes)}`
      : f.requests
        ? ' request size not logged (no $request_length in the access log)'
        : '';
  const parts = [
    `[agents] ${f.agent}${f.label ? ` (${f.label})` : ''} ${f.version} ${f.endpoint || 'no request'}` +
      ` ${(f.wallMs / 1000).toFixed(1)} s${size}`,
    `exit ${f.exitCode}, ${f.requests} request(s) [${f.statuses.join(' ')}]`,
    `context ${f.contextLength}, engine: ${f.promptTokens} prompt tokens processed, ${f.generatedTokens} generated`,
    `last prompt in the engine's slot ${f.lastPromptTokens} tokens (${f.lastPromptChars} chars)`,
    f.networkSummary ?? 'not sandboxed',
  ];
  if (unkeyed.length) {
    parts.push(`without a key: ${unkeyed.map((e) => `${e.method} ${e.path} ${e.status}`).join(', ')}`);
  }
  console.log(parts.join('; '));
  const dir = path.join(process.cwd(), 'test-results');
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, `agents-${f.agent}${f.label ? `-${f.label}` : ''}.json`),
    JSON.stringify(f, null, 2) + '\n',
  );
}
