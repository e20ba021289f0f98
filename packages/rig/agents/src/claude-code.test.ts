// Claude Code (`claude -p`, Anthropic /v1/messages) against the real gateway in front of the rendered
// engine, at the appliance's defaults (no ONEAPP_COPILOT_* override), serving the testbed's 'agent' model
// (it ends its replies; trained context 131072, so the engine's context is the appliance's, not the model's).
// Its default request (24 tools) is the largest of the four agents': ~44 k tokens of the tiny model's
// 2 048-token vocabulary (fewer in Devstral's), more than the former default context; it fits the
// default, after a minute or two of prefill on this machine.
import { variableByName } from '@slm-copilot/context-schema';
import { ensureTinyModel } from '@slm-copilot/testbed';
import { afterAll, describe, expect, it } from 'vitest';
import { claudeRunner } from './agents.js';
import { startAppliance, type Appliance } from './appliance.js';
import { expectOnlyAppliance, expectServed } from './checks.js';
import { KNOWN_ATTEMPTS } from './known-attempts.js';
import { createSandbox, sandboxUnavailable, type Sandbox } from './netns.js';
import { session, slotContext, type Runner } from './session.js';

const DEFAULT_CONTEXT = Number(variableByName.get('ONEAPP_COPILOT_CONTEXT_SIZE')!.default);
/** The default context before issue #14, which Claude Code's default request did not fit (400). */
const FORMER_DEFAULT_CONTEXT = 32768;
const BOUND = 5 * 60_000;
const PROMPT = 'Say hello.';
/** Its probe of the origin without a key (user agent Bun/…): the gateway refuses it, never proxied. */
const PROBE = { unkeyed: ['HEAD / 401'] };

const KNOWN = KNOWN_ATTEMPTS['claude-code'];

const unavailable = await sandboxUnavailable();
const sandboxed = `sandboxed${unavailable ? ` (skipped: ${unavailable})` : ''}`;
let sandbox: Sandbox | undefined;
const apps: Appliance[] = [];

/** One run on an appliance of its own (the defaults, the 'agent' model): its access log is this run's. */
async function run(label: string, runner: Runner) {
  if (!unavailable) sandbox ??= await createSandbox();
  const app = await startAppliance({
    agents: ['claude-code'],
    model: (build) => ensureTinyModel({ llama: build, variant: 'agent' }),
    address: sandbox?.address,
  });
  apps.push(app);
  expect(slotContext(app.engineArgs)).toBe(DEFAULT_CONTEXT);
  const s = await session(app, 'claude-code', runner, { prompt: PROMPT, timeoutMs: BOUND, label, sandbox });
  return { app, s };
}

afterAll(async () => {
  for (const a of apps) await a.stop();
  await sandbox?.destroy();
});

describe('Claude Code through the gateway (/v1/messages), at the appliance defaults', () => {
  const defaultTitle =
    `its default request (> ${FORMER_DEFAULT_CONTEXT} tokens here) fits the default context ` +
    `(${DEFAULT_CONTEXT}): 200, exit 0, prints the reply the engine generated`;
  it(`${defaultTitle}; ${sandboxed}`, async () => {
    const { app, s } = await run('default', claudeRunner());
    expectServed(s, app, 'claude-code', '/v1/messages', PROMPT, PROBE);
    expect(s.entries.map((e) => `${e.method} ${e.path} ${e.status}`)).toEqual(['POST /v1/messages 200']);
    expect(s.figures.lastPromptTokens).toBeGreaterThan(FORMER_DEFAULT_CONTEXT);
    if (!unavailable) expectOnlyAppliance(s, KNOWN);
  });

  const bareTitle = "`--bare --tools Bash,Read` (the report's advice for a smaller context): 200, exit 0, the reply";
  it(`${bareTitle}; ${sandboxed}`, async () => {
    const { app, s } = await run('bare', claudeRunner(['--bare', '--tools', 'Bash,Read']));
    expectServed(s, app, 'claude-code', '/v1/messages', PROMPT, PROBE);
    expect(s.figures.lastPromptTokens).toBeLessThan(FORMER_DEFAULT_CONTEXT / 4);
    if (!unavailable) expectOnlyAppliance(s, KNOWN);
  });
});
