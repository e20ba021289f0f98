// How each agent is connected to the appliance and run headless for one task: the configuration a user
// writes (or the command a user runs), in the agent's own HOME, then the task. Telemetry and updates off
// with each agent's own switch (where it has one; each named below with where it was found).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AgentKey } from './appliance.js';
import { agentEnv, runAgent, type AgentHome, type RunResult } from './harness.js';
import type { InstalledAgent } from './install.js';

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
  /** Set-up commands run before it (e.g. `cline auth`). */
  setup: RunResult[];
}

/**
 * Continue CLI: the `config.yaml` of clients.md (provider openai, apiBase with /v1), `cn -p --config FILE`.
 * Its metrics exporter is off with CONTINUE_METRICS_ENABLED=0 (read in the CLI's bundle: it is only on
 * with an OTLP endpoint configured anyway); it has no other telemetry switch.
 */
export async function runContinue(
  agent: InstalledAgent,
  h: AgentHome,
  t: Target,
  prompt: string,
  timeoutMs: number,
): Promise<AgentRun> {
  const config = path.join(h.home, '.continue', 'config.yaml');
  await mkdir(path.dirname(config), { recursive: true });
  await writeFile(
    config,
    [
      'name: SLM-Copilot',
      'version: 1.0.0',
      'schema: v1',
      'models:',
      '  - name: Devstral Small 2 (SLM-Copilot)',
      '    provider: openai',
      `    model: ${t.model}`,
      `    apiBase: ${t.origin}/v1`,
      `    apiKey: ${t.key.value}`,
      '    roles: [chat, edit, apply]',
      '    capabilities: [tool_use]',
      `    defaultCompletionOptions: { contextLength: ${t.contextLength} }`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const env = agentEnv(h, t.caFile, { CONTINUE_METRICS_ENABLED: '0' });
  const task = await runAgent({
    command: agent.bin,
    args: ['-p', '--config', config, prompt],
    cwd: h.work,
    env,
    timeoutMs,
  });
  return { task, setup: [] };
}

/**
 * Cline: `cline auth -p openai -k KEY -m MODEL -b URL/v1` (writes ~/.cline/data/settings/providers.json),
 * then `cline "prompt"`. Telemetry and auto-update off in ~/.cline/data/settings/global-settings.json
 * (`telemetryOptOut`, `autoUpdateEnabled`: the CLI's settings schema, read in its binary).
 */
export async function runCline(
  agent: InstalledAgent,
  h: AgentHome,
  t: Target,
  prompt: string,
  timeoutMs: number,
): Promise<AgentRun> {
  const env = agentEnv(h, t.caFile);
  const auth = await runAgent({
    command: agent.bin,
    args: ['auth', '-p', 'openai', '-k', t.key.value, '-m', t.model, '-b', `${t.origin}/v1`],
    cwd: h.work,
    env,
    timeoutMs: 60_000,
  });
  const settings = path.join(h.home, '.cline', 'data', 'settings', 'global-settings.json');
  await mkdir(path.dirname(settings), { recursive: true });
  await writeFile(settings, JSON.stringify({ telemetryOptOut: true, autoUpdateEnabled: false }, null, 2) + '\n');
  if (auth.exitCode !== 0) return { task: auth, setup: [] };
  const task = await runAgent({ command: agent.bin, args: [prompt], cwd: h.work, env, timeoutMs });
  return { task, setup: [auth] };
}

/**
 * Codex: a provider in ~/.codex/config.toml (clients.md: `wire_api = "responses"`, the key read from
 * SLM_API_KEY), `[analytics] enabled = false` and `check_for_update_on_startup = false` (a key in the
 * binary's config schema); it trusts the CA only through CODEX_CA_CERTIFICATE.
 */
export async function runCodex(
  agent: InstalledAgent,
  h: AgentHome,
  t: Target,
  prompt: string,
  timeoutMs: number,
): Promise<AgentRun> {
  const config = path.join(h.home, '.codex', 'config.toml');
  await mkdir(path.dirname(config), { recursive: true });
  await writeFile(
    config,
    [
      `model = "${t.model}"`,
      'model_provider = "slm"',
      'check_for_update_on_startup = false',
      '',
      '[model_providers.slm]',
      'name = "SLM-Copilot"',
      `base_url = "${t.origin}/v1"`,
      'env_key = "SLM_API_KEY"',
      'wire_api = "responses"',
      '',
      '[analytics]',
      'enabled = false',
      '',
    ].join('\n'),
  );
  const env = agentEnv(h, t.caFile, { CODEX_CA_CERTIFICATE: t.caFile, SLM_API_KEY: t.key.value });
  const args = ['exec', '--skip-git-repo-check', prompt];
  return { task: await runAgent({ command: agent.bin, args, cwd: h.work, env, timeoutMs }), setup: [] };
}

/** Claude Code's switches for telemetry, error reports, updates and other non-essential traffic. */
export const CLAUDE_QUIET_ENV: Readonly<Record<string, string>> = Object.freeze({
  DISABLE_TELEMETRY: '1',
  DISABLE_AUTOUPDATER: '1',
  DISABLE_ERROR_REPORTING: '1',
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
});

/**
 * Claude Code: ANTHROPIC_BASE_URL (the origin, no /v1) and ANTHROPIC_API_KEY (sent as x-api-key),
 * `claude -p "…" --output-format text --model MODEL`; `extraArgs` e.g. `--bare --tools Bash,Read`.
 */
export function claudeRunner(extraArgs: string[] = []) {
  return async (
    agent: InstalledAgent,
    h: AgentHome,
    t: Target,
    prompt: string,
    timeoutMs: number,
  ): Promise<AgentRun> => {
    const env = agentEnv(h, t.caFile, {
      ...CLAUDE_QUIET_ENV,
      ANTHROPIC_BASE_URL: t.origin,
      ANTHROPIC_API_KEY: t.key.value,
    });
    const args = ['-p', prompt, '--output-format', 'text', '--model', t.model, ...extraArgs];
    return { task: await runAgent({ command: agent.bin, args, cwd: h.work, env, timeoutMs }), setup: [] };
  };
}
