// How each agent is connected to the appliance and run headless for one task: the very lines the report
// gives users (@slm-copilot/report-writer's snippet renderers), run by /bin/sh in the agent's own HOME,
// after the per-VM CA was fetched and checked with the report's own lines. A wrong line in the report is
// a failed run here. Telemetry and updates off with each agent's own switch, in its snippet.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  caFetchSnippet,
  claudeCodeSnippet,
  clineSnippet,
  codexSnippet,
  continueSnippet,
  runLine,
  CLAUDE_QUIET_ENV,
  type AgentSnippet,
  type ClientTarget,
} from '@slm-copilot/report-writer';
import { CA_DOWNLOAD_PATH } from '@slm-copilot/nginx-config';
import type { AgentKey } from './appliance.js';
import { agentEnv, runAgent, type AgentHome, type RunResult } from './harness.js';
import type { InstalledAgent } from './install.js';

export { CLAUDE_QUIET_ENV };

export interface Target {
  /** `https://localhost:<port>`: the gateway, no path. */
  origin: string;
  caFile: string;
  key: AgentKey;
  model: string;
  /** The engine's context per request (what a user writes as the model's context length). */
  contextLength: number;
}

export interface AgentRun {
  /** The task's run (the last command). */
  task: RunResult;
  /** Set-up commands run before it (the snippet's setup lines, e.g. `cline auth`). */
  setup: RunResult[];
}

const SETUP_BOUND_MS = 60_000;

/** The snippets' view of the target: the appliance serves a per-VM CA (self-signed mode). */
export function clientTargetOf(t: Target): ClientTarget {
  return { origin: t.origin, model: t.model, key: t.key.value, contextLength: t.contextLength, perVmCa: true };
}

/**
 * The shell the report's lines run in: the harness's clean environment with the agent's bin directory on
 * PATH (the lines say `cline`, `cn`, …) and no CA variable: the snippet sets the one its agent reads.
 */
function shellEnv(agent: InstalledAgent, h: AgentHome, t: Target): Record<string, string> {
  const env = agentEnv(h, t.caFile);
  delete env.NODE_EXTRA_CA_CERTS;
  return { ...env, PATH: `${path.dirname(agent.bin)}:${env.PATH}` };
}

/**
 * The report's CA lines, as a user runs them in HOME: `curl -k` from the gateway to ~/slm-copilot-ca.pem,
 * then the openssl check, whose output must end with the CA's fingerprint (what the report shows). Run
 * like the agent (runAgent: in the sandbox when there is one); a failure throws, failing the agent's test.
 */
export async function fetchCa(h: AgentHome, t: Target, env: Record<string, string>): Promise<RunResult> {
  const sha256 = new X509Certificate(await readFile(t.caFile)).fingerprint256;
  // (the SSH alternative cannot run here: no SSH server; its host and user only shape that line)
  const lines = caFetchSnippet({ origin: t.origin, host: 'localhost', caPathOnVm: t.caFile, sha256, sshUser: 'root' });
  const script = `set -e\n${lines.download}\n${lines.check}`;
  const r = await runAgent({ command: '/bin/sh', args: ['-c', script], cwd: h.home, env, timeoutMs: SETUP_BOUND_MS });
  if (r.exitCode !== 0 || !r.stdout.trim().endsWith(`Fingerprint=${lines.expected}`)) {
    throw new Error(
      `the report's CA lines failed (exit ${r.exitCode}): ${script}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\n` +
        `expected the output to end with Fingerprint=${lines.expected}`,
    );
  }
  return r;
}

/** The report's CA download as the suite runs it (curl, no key): the user's step, not a request of the agent. */
export function isCaFetch(e: { path: string; user_agent: string }): boolean {
  return e.path === CA_DOWNLOAD_PATH && e.user_agent.startsWith('curl/');
}

/** One `sh -c` run: `set -e`, the snippet's env lines, then `line` (as the last command, exec'd). */
function shRun(env: Record<string, string>, cwd: string, s: AgentSnippet, line: string, timeoutMs: number) {
  const script = ['set -e', ...s.env, line].join('\n');
  return runAgent({ command: '/bin/sh', args: ['-c', script], cwd, env, timeoutMs });
}

/**
 * Runs a snippet as the report tells a user to: the CA fetched and checked, each setup line once (in HOME,
 * stopping at the first that fails), then the task's run line with the prompt (in the work dir).
 */
export async function runSnippet(
  agent: InstalledAgent,
  h: AgentHome,
  t: Target,
  snippet: AgentSnippet,
  task: { prompt: string; timeoutMs: number; extraArgs?: string[] },
): Promise<AgentRun> {
  const env = shellEnv(agent, h, t);
  await fetchCa(h, t, env);
  const setup: RunResult[] = [];
  for (const line of snippet.setup) {
    const r = await shRun(env, h.home, snippet, line, SETUP_BOUND_MS);
    if (r.exitCode !== 0) return { task: r, setup };
    setup.push(r);
  }
  const run = `exec ${runLine(snippet, task.prompt, task.extraArgs)}`;
  return { task: await shRun(env, h.work, snippet, run, task.timeoutMs), setup };
}

/** A runner for the agent whose report lines `render` gives: runSnippet with the task (and `extraArgs`). */
function snippetRunner(render: (t: ClientTarget) => AgentSnippet, extraArgs?: string[]) {
  return (agent: InstalledAgent, h: AgentHome, t: Target, prompt: string, timeoutMs: number): Promise<AgentRun> =>
    runSnippet(agent, h, t, render(clientTargetOf(t)), { prompt, timeoutMs, extraArgs });
}

/**
 * Continue CLI: the report's model block in ~/.continue/models/, the key as `${{ secrets.… }}` in
 * ~/.continue/.env, `cn -p --config FILE`. CONTINUE_METRICS_ENABLED=0 (read in the CLI's source: its
 * metrics exporter is only on with an OTLP endpoint anyway; it has no other telemetry switch).
 */
export const runContinue = snippetRunner(continueSnippet);

/**
 * Cline: the report's lines: telemetry and auto-update off in ~/.cline/data/settings/global-settings.json
 * (`telemetryOptOut`, `autoUpdateEnabled`: the CLI's settings schema, read in its binary; on disk before
 * `cline auth`, which otherwise starts Cline's telemetry), then `cline auth -p openai -k KEY -m MODEL -b
 * URL/v1` (writes ~/.cline/data/settings/providers.json), then `cline "prompt"`.
 */
export const runCline = snippetRunner(clineSnippet);

/**
 * Codex: the report's ~/.codex/config.toml (a provider with `wire_api = "responses"`, the key read from
 * SLM_COPILOT_API_KEY, `[analytics] enabled = false`, `check_for_update_on_startup = false`: a key in the
 * binary's config schema); it trusts the CA only through CODEX_CA_CERTIFICATE (no NODE_EXTRA_CA_CERTS here).
 */
export const runCodex = snippetRunner(codexSnippet);

/**
 * Claude Code: the report's env lines (ANTHROPIC_BASE_URL = the origin, no /v1; ANTHROPIC_API_KEY, sent
 * as x-api-key; ANTHROPIC_MODEL; the telemetry switches), `claude -p --output-format text "…"`;
 * `extraArgs` e.g. `--bare --tools Bash,Read`.
 */
export function claudeRunner(extraArgs: string[] = []) {
  return snippetRunner(claudeCodeSnippet, extraArgs);
}
