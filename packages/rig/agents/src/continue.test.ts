// Continue CLI (`cn -p --config FILE`) against the real gateway in front of the rendered engine, at the
// appliance's defaults (no ONEAPP_COPILOT_* override), serving the testbed's 'agent' model (it ends its
// replies): Continue sends no max_tokens and needs nothing more.
import { variableByName } from '@slm-copilot/context-schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runContinue } from './agents.js';
import { type Appliance } from './appliance.js';
import { expectOnlyAppliance, expectServed } from './checks.js';
import { KNOWN_ATTEMPTS } from './known-attempts.js';
import { sandboxUnavailable } from './netns.js';
import { runAtDefaults, type DefaultsRun } from './at-defaults.js';
import { slotContext, type Session } from './session.js';

const DEFAULT_CONTEXT = Number(variableByName.get('ONEAPP_COPILOT_CONTEXT_SIZE')!.default);
const BOUND = 3 * 60_000;
const PROMPT = 'Say hello.';

const KNOWN = KNOWN_ATTEMPTS.continue;

const unavailable = await sandboxUnavailable();
let run: DefaultsRun;
let app: Appliance;
let s: Session;

beforeAll(async () => {
  run = await runAtDefaults('continue', runContinue, { prompt: PROMPT, timeoutMs: BOUND, sandboxed: !unavailable });
  ({ app, s } = run);
});

afterAll(async () => {
  await run?.stop();
});

describe('Continue CLI through the gateway, at the appliance defaults', () => {
  it(`the engine runs the default context (${DEFAULT_CONTEXT}), and Continue is told so`, () => {
    expect(slotContext(app.engineArgs)).toBe(DEFAULT_CONTEXT);
    expect(s.figures.contextLength).toBe(DEFAULT_CONTEXT);
  });

  it('served: exit 0, prints the reply the engine generated (ended by itself), logged under its key', () => {
    expectServed(s, app, 'continue', '/v1/chat/completions', PROMPT);
  });

  it.skipIf(unavailable)(
    `reaches nothing but the appliance (sandboxed${unavailable ? `: ${unavailable}` : ''})`,
    () => {
      expectOnlyAppliance(s, KNOWN);
    },
  );
});
