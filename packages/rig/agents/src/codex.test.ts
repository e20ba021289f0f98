// Codex (`codex exec`, wire_api "responses") against the real gateway in front of the rendered engine, at
// the appliance's defaults (no ONEAPP_COPILOT_* override), serving the testbed's 'agent' model (it ends its
// replies; Codex sends no max output and needs nothing more); and the mutation: the model's stock Mistral
// 2512 template instead of ours must make it fail.
import { variableByName } from '@slm-copilot/context-schema';
import { ensureTinyModel } from '@slm-copilot/testbed';
import { afterAll, describe, expect, it } from 'vitest';
import { runCodex } from './agents.js';
import { startAppliance, type Appliance } from './appliance.js';
import { expectOnlyAppliance, expectServed } from './checks.js';
import { KNOWN_ATTEMPTS } from './known-attempts.js';
import { createSandbox, sandboxUnavailable, type Sandbox } from './netns.js';
import { session, slotContext } from './session.js';

const DEFAULT_CONTEXT = Number(variableByName.get('ONEAPP_COPILOT_CONTEXT_SIZE')!.default);
const BOUND = 3 * 60_000;
const PROMPT = 'Say hello.';

const KNOWN = KNOWN_ATTEMPTS.codex;

const unavailable = await sandboxUnavailable();
const sandboxed = `sandboxed${unavailable ? ` (skipped: ${unavailable})` : ''}`;
let sandbox: Sandbox | undefined;
const apps: Appliance[] = [];
const start = async (stockTemplate: boolean) => {
  if (!unavailable) sandbox ??= await createSandbox();
  const app = await startAppliance({
    agents: ['codex'],
    model: (build) => ensureTinyModel({ llama: build, variant: 'agent' }),
    stockTemplate,
    address: sandbox?.address,
  });
  apps.push(app);
  return app;
};

afterAll(async () => {
  for (const a of apps) await a.stop();
  await sandbox?.destroy();
});

describe('Codex through the gateway (/v1/responses), at the appliance defaults', () => {
  const served =
    `with our template at the default context (${DEFAULT_CONTEXT}): exit 0, prints the reply the engine ` +
    'generated, logged under its key, nothing left';
  it(`${served}; ${sandboxed}: reaches nothing but the appliance`, async () => {
    const app = await start(false);
    expect(slotContext(app.engineArgs)).toBe(DEFAULT_CONTEXT);
    const s = await session(app, 'codex', runCodex, { prompt: PROMPT, timeoutMs: BOUND, sandbox });
    expectServed(s, app, 'codex', '/v1/responses', PROMPT);
    if (!unavailable) expectOnlyAppliance(s, KNOWN);
  });

  it("mutation: with the model's stock template Codex fails (the engine answers 500)", async () => {
    const app = await start(true);
    const s = await session(app, 'codex', runCodex, {
      prompt: PROMPT,
      timeoutMs: BOUND,
      label: 'stock-template',
      sandbox,
    });
    console.log(`[agents] codex (stock-template): stderr tail ${JSON.stringify(s.run.task.stderr.slice(-300))}`);
    expect(s.run.task.exitCode).not.toBe(0);
    expect(s.entries.length).toBeGreaterThan(0);
    expect(s.entries.map((e) => e.status)).toContain(500);
    // Why, in the engine's words: the stock template's check (two user messages in a row).
    expect(app.engine.output()).toMatch(/roles must alternate/i);
    expect(s.run.task.leftovers).toEqual([]);
    if (!unavailable) expectOnlyAppliance(s, KNOWN);
  });
});
