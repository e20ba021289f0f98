// Codex (`codex exec`, wire_api "responses") against the real gateway in front of the rendered engine;
// and the mutation: the model's stock Mistral 2512 template instead of ours must make it fail.
import { afterAll, describe, expect, it } from 'vitest';
import { runCodex } from './agents.js';
import { startAppliance, type Appliance } from './appliance.js';
import { expectOnlyAppliance, expectServed } from './checks.js';
import { KNOWN_ATTEMPTS } from './known-attempts.js';
import { createSandbox, sandboxUnavailable, type Sandbox } from './netns.js';
import { session } from './session.js';

// Codex's first request renders to ~15.0 k tokens of the tiny model (9 tools, developer messages): it
// needs more than 8192; 16384 leaves ~1.4 k tokens for the reply, which never ends before the context does.
const CONTEXT = 16384;
const BOUND = 5 * 60_000;
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
    overrides: { ONEAPP_COPILOT_CONTEXT_SIZE: String(CONTEXT) },
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

describe('Codex through the gateway (/v1/responses)', () => {
  const served = 'with our template: exit 0, prints what the engine generated, logged under its key, nothing left';
  it(`${served}; ${sandboxed}: reaches nothing but the appliance`, async () => {
    const app = await start(false);
    const s = await session(app, 'codex', runCodex, {
      prompt: PROMPT,
      timeoutMs: BOUND,
      contextLength: CONTEXT,
      sandbox,
    });
    expectServed(s, app, 'codex', '/v1/responses', PROMPT);
    if (!unavailable) expectOnlyAppliance(s, KNOWN);
  });

  it("mutation: with the model's stock template Codex fails (the engine answers 500)", async () => {
    const app = await start(true);
    const s = await session(app, 'codex', runCodex, {
      prompt: PROMPT,
      timeoutMs: BOUND,
      contextLength: CONTEXT,
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
