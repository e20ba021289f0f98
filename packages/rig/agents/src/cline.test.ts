// Cline (the report's lines: telemetry off, `cline auth …`, then `cline "…"`) against the real gateway in
// front of the rendered engine, at the appliance's defaults (no ONEAPP_COPILOT_* override), serving the
// testbed's 'agent' model (it ends its replies; Cline sends no max_tokens and needs nothing more).
// Cline ends a task only through its completion tool in the VS Code extension; this CLI (3.0.65) takes a
// reply without a tool call as the task's answer: one request, no re-prompt, exit 0.
import { variableByName } from '@slm-copilot/context-schema';
import { clineSnippet } from '@slm-copilot/report-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientTargetOf, runCline } from './agents.js';
import { MODEL_ID, type Appliance } from './appliance.js';
import { expectOnlyAppliance, expectServed } from './checks.js';
import { KNOWN_ATTEMPTS } from './known-attempts.js';
import { sandboxUnavailable } from './netns.js';
import { runAtDefaults, type DefaultsRun } from './at-defaults.js';
import { slotContext, type Session } from './session.js';

const DEFAULT_CONTEXT = Number(variableByName.get('ONEAPP_COPILOT_CONTEXT_SIZE')!.default);
const BOUND = 3 * 60_000;
const PROMPT = 'Say hello.';
/** Its hub daemon outlives it (it leaves the process group): found by the harness and ended. */
const HUB = /cline --cline-hub-daemon /;

const KNOWN = KNOWN_ATTEMPTS.cline;

const unavailable = await sandboxUnavailable();
let run: DefaultsRun;
let app: Appliance;
let s: Session;

beforeAll(async () => {
  run = await runAtDefaults('cline', runCline, { prompt: PROMPT, timeoutMs: BOUND, sandboxed: !unavailable });
  ({ app, s } = run);
});

afterAll(async () => {
  await run?.stop();
});

describe('Cline through the gateway, at the appliance defaults', () => {
  // (with the opt-out on disk first, `cline auth` no longer reaches for otel.cline.bot: the sandbox test)
  it("the report's setup lines (telemetry off, then `cline auth`) exit 0 and leave nothing behind", () => {
    const target = { origin: app.origin, caFile: app.caFile, key: app.keys.cline!, model: MODEL_ID, contextLength: 0 };
    const lines = clineSnippet(clientTargetOf(target)).setup;
    expect(s.run.setup).toHaveLength(lines.length);
    for (const r of s.run.setup) {
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.leftovers).toEqual([]);
    }
  });

  it(`the engine runs the default context (${DEFAULT_CONTEXT})`, () => {
    expect(slotContext(app.engineArgs)).toBe(DEFAULT_CONTEXT);
  });

  it('served: exit 0, prints the reply the engine generated (ended by itself), logged under its key', () => {
    expectServed(s, app, 'cline', '/v1/chat/completions', PROMPT, { leftover: HUB });
  });

  it('a reply without a tool call ends the task: one request, no re-prompt', () => {
    expect(s.entries.map((e) => `${e.method} ${e.path} ${e.status}`)).toEqual(['POST /v1/chat/completions 200']);
  });

  it.skipIf(unavailable)(
    `reaches nothing but the appliance (sandboxed${unavailable ? `: ${unavailable}` : ''})`,
    () => {
      expectOnlyAppliance(s, KNOWN);
    },
  );

  it('its hub daemon outlives it: found by the harness, ended, and none remains', () => {
    expect(s.run.task.leftovers).toHaveLength(1);
    expect(s.run.task.leftovers[0]).toMatch(HUB);
  });
});
