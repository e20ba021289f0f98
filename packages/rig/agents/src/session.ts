// One agent, one task, against one appliance: install (cached), run in a fresh HOME, then collect what
// the appliance saw (access log lines of this agent's key, the engine's completion and counters) and the
// figures the suite reports (version, endpoint, wall time, request size).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Target, AgentRun } from './agents.js';
import { MODEL_ID, type Appliance } from './appliance.js';
import {
  countTokens,
  engineCounters,
  lastCompletion,
  parseAccessLog,
  type AccessEntry,
  type EngineCompletion,
} from './evidence.js';
import { agentHome, type AgentHome } from './harness.js';
import { ensureAgent, type InstalledAgent } from './install.js';
import { AGENT_PINS, type AgentName } from './pins.js';

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
  /** Wall time of the task's run (ms), set-up commands not counted. */
  wallMs: number;
  /** How long the install took when this run needed one (0: cache hit). */
  installMs: number;
  requests: number;
  statuses: number[];
  /** The engine's prompt tokens for this agent's requests (all of them, from /metrics). */
  promptTokens: number;
  generatedTokens: number;
  /** The last prompt as the engine rendered it: characters and tokens. */
  lastPromptChars: number;
  lastPromptTokens: number;
  /** The gateway logs no $request_length (the rendered log format): the request's bytes are not known. */
  requestBytes: string;
}

export interface Session {
  installed: InstalledAgent;
  run: AgentRun;
  /** Access log entries of this agent's key. */
  entries: AccessEntry[];
  /** Entries without a valid key (each appliance serves one agent: these are the agent's too). */
  unkeyed: AccessEntry[];
  completion: EngineCompletion | undefined;
  figures: Figures;
}

/** Runs `runner` for `name` against `app` and gathers the evidence. */
export async function session(
  app: Appliance,
  name: AgentName,
  runner: Runner,
  opts: { prompt: string; timeoutMs: number; contextLength: number; label?: string },
): Promise<Session> {
  const install0 = performance.now();
  const installed = await ensureAgent(name);
  const installMs = installed.cached ? 0 : Math.round(performance.now() - install0);
  const key = app.keys[name];
  if (!key) throw new Error(`the appliance has no key for ${name}`);
  const before = await engineCounters(app.engine.baseUrl);
  const h = await agentHome(name);
  try {
    const target: Target = {
      origin: app.origin,
      caFile: app.caFile,
      key,
      model: MODEL_ID,
      contextLength: opts.contextLength,
    };
    const run = await runner(installed, h, target, opts.prompt, opts.timeoutMs);
    const after = await engineCounters(app.engine.baseUrl);
    const log = parseAccessLog(await app.gateway.accessLog());
    const entries = log.filter((e) => e.key === key.name);
    const unkeyed = log.filter((e) => e.key === '');
    const completion = await lastCompletion(app.engine.baseUrl).catch(() => undefined);
    const delta = (m: string) => Math.round((after[m] ?? 0) - (before[m] ?? 0));
    const figures: Figures = {
      agent: name,
      label: opts.label ?? '',
      version: installed.version,
      endpoint: [...new Set(entries.map((e) => `${e.method} ${e.path}`))].join(', '),
      exitCode: run.task.exitCode,
      wallMs: run.task.wallMs,
      installMs,
      requests: entries.length,
      statuses: entries.map((e) => e.status),
      promptTokens: delta('prompt_tokens_total'),
      generatedTokens: delta('tokens_predicted_total'),
      lastPromptChars: completion?.prompt.length ?? 0,
      lastPromptTokens: completion ? await countTokens(app.engine.baseUrl, completion.prompt) : 0,
      requestBytes: 'not logged (the access log format has no $request_length)',
    };
    await report(figures, unkeyed);
    return { installed, run, entries, unkeyed, completion, figures };
  } finally {
    h.remove();
  }
}

/** One line on stdout and test-results/agents-<name>[-<label>].json. */
async function report(f: Figures, unkeyed: AccessEntry[]): Promise<void> {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const parts = [
    `[agents] ${f.agent}${f.label ? ` (${f.label})` : ''} ${f.version} (${AGENT_PINS[f.agent].package})` +
      `: exit ${f.exitCode}`,
    `${f.endpoint || 'no request'} ×${f.requests} [${f.statuses.join(' ')}]`,
    `wall ${s(f.wallMs)}`,
    f.installMs ? `install ${s(f.installMs)}` : 'install cached',
    `last request as rendered by the engine ${f.lastPromptTokens} tokens (${f.lastPromptChars} chars)`,
    `engine prompt tokens ${f.promptTokens}, generated ${f.generatedTokens}`,
    `request bytes ${f.requestBytes}`,
  ];
  if (unkeyed.length)
    parts.push(`without a key: ${unkeyed.map((e) => `${e.method} ${e.path} ${e.status}`).join(', ')}`);
  console.log(parts.join('; '));
  const dir = path.join(process.cwd(), 'test-results');
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, `agents-${f.agent}${f.label ? `-${f.label}` : ''}.json`),
    JSON.stringify(f, null, 2) + '\n',
  );
}
