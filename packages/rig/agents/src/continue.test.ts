// Continue CLI (`cn -p --config FILE`) against the real gateway in front of the rendered engine, at the
// appliance's defaults (no ONEAPP_COPILOT_* override), serving the testbed's 'agent' model (it ends its
// replies): Continue sends no max_tokens and needs nothing more.
import { variableByName } from '@slm-copilot/context-schema';
import { ensureTinyModel } from '@slm-copilot/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runContinue } from './agents.js';
import { startAppliance, type Appliance } from './appliance.js';
import { expectOnlyAppliance, expectServed } from './checks.js';
import { KNOWN_ATTEMPTS } from './known-attempts.js';
import { createSandbox, sandboxUnavailable, type Sandbox } from './netns.js';
import { session, slotContext, type Session } from './session.js';

const DEFAULT_CONTEXT = Number(variableByName.get('ONEAPP_COPILOT_CONTEXT_SIZE')!.default);
const BOUND = 3 * 60_000;
const PROMPT = 'Say hello.';

const KNOWN = KNOWN_ATTEMPTS.continue;

const unavailable = await sandboxUnavailable();
let sandbox: Sandbox | undefined;
let app: Appliance;
let s: Session;

beforeAll(async () => {
  sandbox = unavailable ? undefined : await createSandbox();
  app = await startAppliance({
    agents: ['continue'],
    model: (build) => ensureTinyModel({ llama: build, variant: 'agent' }),
    address: sandbox?.address,
  });
  s = await session(app, 'continue', runContinue, { prompt: PROMPT, timeoutMs: BOUND, sandbox });
});

afterAll(async () => {
  await app?.stop();
  await sandbox?.destroy();
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
