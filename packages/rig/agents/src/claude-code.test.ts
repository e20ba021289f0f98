// Claude Code (`claude -p`, Anthropic /v1/messages) against the real gateway in front of the rendered
// engine. Neither run can pass with the tiny test model today; these tests pin down exactly how each
// fails, so that a change (a model that ends replies, a larger trained context) shows up here.
import { afterAll, describe, expect, it } from 'vitest';
import { claudeRunner } from './agents.js';
import { startAppliance, type Appliance } from './appliance.js';
import { expectOnlyAppliance } from './checks.js';
import { KNOWN_ATTEMPTS } from './known-attempts.js';
import { createSandbox, sandboxUnavailable, type Sandbox } from './netns.js';
import { session } from './session.js';

const BOUND = 5 * 60_000;
const PROMPT = 'Say hello.';

const KNOWN = KNOWN_ATTEMPTS['claude-code'];

const unavailable = await sandboxUnavailable();
const sandboxed = `sandboxed${unavailable ? ` (skipped: ${unavailable})` : ''}`;
let sandbox: Sandbox | undefined;
const apps: Appliance[] = [];
const start = async (context: number) => {
  if (!unavailable) sandbox ??= await createSandbox();
  const app = await startAppliance({
    agents: ['claude-code'],
    overrides: { ONEAPP_COPILOT_CONTEXT_SIZE: String(context) },
    address: sandbox?.address,
  });
  apps.push(app);
  return app;
};

afterAll(async () => {
  for (const a of apps) await a.stop();
  await sandbox?.destroy();
});

describe('Claude Code through the gateway (/v1/messages)', () => {
  const defaultTitle = 'known limit: its default request does not fit the default context (32768): 400, exit 1';
  it(`${defaultTitle}; ${sandboxed}`, async () => {
    const app = await start(32768);
    const s = await session(app, 'claude-code', claudeRunner(), {
      prompt: PROMPT,
      timeoutMs: BOUND,
      contextLength: 32768,
      label: 'default',
      sandbox,
    });
    const task = s.run.task;
    expect(task.timedOut).toBe(false);
    expect(task.exitCode).toBe(1);
    expect(s.entries.map((e) => `${e.method} ${e.path} ${e.status}`)).toEqual(['POST /v1/messages 400']);
    // It may also probe the origin without a key (HEAD /): the gateway refuses that (401), never proxied.
    for (const e of s.unkeyed) expect(`${e.method} ${e.path} ${e.status}`).toBe('HEAD / 401');
    const tokens = Number(
      /request \((\d+) tokens\) exceeds the available context size \(32768 tokens\)/.exec(task.stdout)?.[1],
    );
    expect(tokens).toBeGreaterThan(32768);
    expect(task.stdout).toMatch(/^API Error: 400 /);
    expect(task.leftovers).toEqual([]);
    if (!unavailable) expectOnlyAppliance(s, KNOWN);
  });

  const bareTitle = 'known limit: `--bare --tools Bash,Read` fits, the endless reply overflows the follow-up: exit 1';
  it(`${bareTitle}; ${sandboxed}`, async () => {
    const app = await start(4096);
    const s = await session(app, 'claude-code', claudeRunner(['--bare', '--tools', 'Bash,Read']), {
      prompt: PROMPT,
      timeoutMs: BOUND,
      contextLength: 4096,
      label: 'bare',
      sandbox,
    });
    const task = s.run.task;
    expect(task.timedOut).toBe(false);
    expect(s.entries.map((e) => `${e.path} ${e.status}`)).toEqual(['/v1/messages 200', '/v1/messages 400']);
    expect(task.exitCode).toBe(1);
    expect(task.stdout).toMatch(/^API Error: 400 request \(\d+ tokens\) exceeds the available context size \(4096/);
    expect(task.leftovers).toEqual([]);
    if (!unavailable) expectOnlyAppliance(s, KNOWN);
  });
});
