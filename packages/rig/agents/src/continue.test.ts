// Continue CLI (`cn -p --config FILE`) against the real gateway in front of the rendered engine.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runContinue } from './agents.js';
import { startAppliance, type Appliance } from './appliance.js';
import { expectOnlyAppliance } from './checks.js';
import { normalise } from './evidence.js';
import { KNOWN_ATTEMPTS } from './known-attempts.js';
import { createSandbox, sandboxUnavailable, type Sandbox } from './netns.js';
import { session, type Session } from './session.js';

// Continue's request renders to ~3.2 k tokens of the tiny model; the tiny model never ends a reply and
// Continue sends no max_tokens, so it generates until the context is full: 4096 (an operator's
// ONEAPP_COPILOT_CONTEXT_SIZE) keeps that to ~1 k tokens. The appliance's default (32768) takes minutes here.
const CONTEXT = 4096;
const BOUND = 5 * 60_000;

const KNOWN = KNOWN_ATTEMPTS.continue;

const unavailable = await sandboxUnavailable();
let sandbox: Sandbox | undefined;
let app: Appliance;
let s: Session;

beforeAll(async () => {
  sandbox = unavailable ? undefined : await createSandbox();
  app = await startAppliance({
    agents: ['continue'],
    overrides: { ONEAPP_COPILOT_CONTEXT_SIZE: String(CONTEXT) },
    address: sandbox?.address,
  });
  s = await session(app, 'continue', runContinue, {
    prompt: 'Say hello.',
    timeoutMs: BOUND,
    contextLength: CONTEXT,
    sandbox,
  });
});

afterAll(async () => {
  await app?.stop();
  await sandbox?.destroy();
});

describe('Continue CLI through the gateway', () => {
  it('exits 0 within the bound', () => {
    expect(s.run.task.timedOut).toBe(false);
    expect(s.run.task.exitCode, s.run.task.stderr.slice(-2000)).toBe(0);
  });

  it('prints the text the engine generated for its request', () => {
    const generated = normalise(s.completion?.generated ?? '');
    expect(generated.length).toBeGreaterThan(200);
    expect(s.completion?.prompt).toContain('Say hello.');
    expect(normalise(s.run.task.stdout)).toContain(generated);
  });

  it("the gateway logged /v1/chat/completions under the agent's key name, no 4xx/5xx", () => {
    expect(s.entries.length).toBeGreaterThan(0);
    expect(s.unkeyed).toEqual([]);
    expect(s.entries.map((e) => e.path)).toContain('/v1/chat/completions');
    for (const e of s.entries) {
      expect(e.key).toBe(app.keys.continue!.name);
      expect(e.status).toBeLessThan(400);
    }
  });

  it('leaves no process behind', () => {
    expect(s.run.task.leftovers).toEqual([]);
  });

  it.skipIf(unavailable)(
    `reaches nothing but the appliance (sandboxed${unavailable ? `: ${unavailable}` : ''})`,
    () => {
      expectOnlyAppliance(s, KNOWN);
    },
  );
});
