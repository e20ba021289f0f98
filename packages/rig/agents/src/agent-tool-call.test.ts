// An agent executes the tool call it received (issue #13, item 4): Continue CLI (`cn -p`, the report's
// lines; in the agents' network sandbox when there is one) through the real gateway in front of the
// rendered engine, serving the testbed's 'tool-caller' model: its weights make `[TOOL_CALLS]` the first
// token after `[/INST]` and llama-server's tool-call grammar forces the rest (the one tool offered,
// `[ARGS]`, schema-valid JSON with random text); after a tool result it answers in text and ends.
// Continue is offered one tool (its side-effect-free Checklist; every other tool excluded with its own
// --exclude), so the random call cannot touch anything.
// Evidence it executed the call: two requests in the gateway's log; in the engine's second prompt the call
// as Continue sent it back, followed by the tool's result, exactly what Checklist's code makes of those
// arguments; Continue's own session record (call id, status `done`, the same output); it printed the text
// the engine generated last. Mutation: our template without its tool-call block: no call, nothing run.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { variableByName } from '@slm-copilot/context-schema';
import { ensureTinyModel } from '@slm-copilot/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checklistOutput,
  offeredTools,
  onlyToolRunner,
  promptTurns,
  ONLY_TOOL,
  type ContinueRecord,
} from './agent-tool-call.js';
import { startAppliance, type Appliance } from './appliance.js';
import { expectOnlyAppliance } from './checks.js';
import { normalise } from './evidence.js';
import { KNOWN_ATTEMPTS } from './known-attempts.js';
import { createSandbox, sandboxUnavailable, type Sandbox } from './netns.js';
import { session, type Session } from './session.js';
import { engineTemplate, templateWithoutToolCalls } from './tool-calls.js';

// The appliance's default context: the request (one tool) renders to ~1.1 k tokens, and the tool-caller
// model ends its replies by itself, so nothing here needs a smaller one.
const CONTEXT = Number(variableByName.get('ONEAPP_COPILOT_CONTEXT_SIZE')!.default);
const BOUND = 3 * 60_000;
const PROMPT = 'Make a checklist for tidying up this directory.';
// What Continue reaches for besides the appliance: its version check.
const KNOWN = KNOWN_ATTEMPTS.continue;

const unavailable = await sandboxUnavailable();
let sandbox: Sandbox | undefined;
const apps: Appliance[] = [];
const dirs: string[] = [];

const start = async (chatTemplateFile?: string) => {
  const app = await startAppliance({
    agents: ['continue'],
    model: (build) => ensureTinyModel({ llama: build, variant: 'tool-caller' }),
    address: sandbox?.address,
    ...(chatTemplateFile ? { chatTemplateFile } : {}),
  });
  apps.push(app);
  return app;
};

beforeAll(async () => {
  sandbox = unavailable ? undefined : await createSandbox();
});

afterAll(async () => {
  for (const a of apps) await a.stop();
  await sandbox?.destroy();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** One run of Continue, offered only ONLY_TOOL; it must exit 0 within the bound, its session record read. */
async function runContinue(app: Appliance, label: string): Promise<{ s: Session; record: ContinueRecord }> {
  const sink: { record?: ContinueRecord; recordError?: string } = {};
  const s = await session(app, 'continue', onlyToolRunner(ONLY_TOOL, sink), {
    prompt: PROMPT,
    timeoutMs: BOUND,
    contextLength: CONTEXT,
    label,
    sandbox,
  });
  const task = s.run.task;
  expect(task.timedOut, 'the run hit its bound').toBe(false);
  expect(task.exitCode, task.stderr.slice(-2000)).toBe(0);
  expect(sink.recordError).toBeUndefined();
  const record = sink.record!;
  for (const c of record.calls) {
    console.log(`[agent-tool-call] ${label}: ${c.name}(${JSON.stringify(c.arguments)}) id ${c.id} ${c.status}`);
  }
  const printed = normalise(task.stdout);
  console.log(
    `[agent-tool-call] ${label}: ${record.calls.length} call(s) received; ${s.entries.length} request(s); ` +
      `printed ${printed.length} chars; ${(task.wallMs / 1000).toFixed(1)} s`,
  );
  return { s, record };
}

/** Every run: its requests logged under its key, all 200, nothing else; only the appliance; nothing left. */
function expectServed(s: Session, app: Appliance, requests: number): void {
  expect(s.entries.map((e) => `${e.method} ${e.path} ${e.status} ${e.key}`)).toEqual(
    Array<string>(requests).fill(`POST /v1/chat/completions 200 ${app.keys.continue!.name}`),
  );
  expect(s.unkeyed).toEqual([]);
  expect(s.run.task.leftovers).toEqual([]);
  if (sandbox) expectOnlyAppliance(s, KNOWN);
}

describe('an agent executes the tool call it received (Continue CLI)', () => {
  it('Continue runs the call, sends its result back, prints the final reply, exits 0', async () => {
    const app = await start();
    const { s, record } = await runContinue(app, 'tool-call');
    // Two requests: the user's turn (answered with the call) and the follow-up carrying the tool's result.
    expectServed(s, app, 2);
    const prompt = s.completion!.prompt;
    expect(offeredTools(prompt)).toEqual([ONLY_TOOL]);
    expect(prompt).toContain(PROMPT);

    // The agent's record: every call it received (parallel calls allowed) ran to `done`, and its output is
    // what Checklist's code makes of the call's arguments.
    expect(record.calls.length).toBeGreaterThanOrEqual(1);
    expect(new Set(record.calls.map((c) => c.id)).size).toBe(record.calls.length);
    for (const c of record.calls) {
      expect(c.id).toMatch(/\S/);
      expect(c.name).toBe(ONLY_TOOL);
      expect(c.status).toBe('done');
      expect(c.output).toBe(checklistOutput(c.arguments));
    }
    // Its first reply carried them all.
    const [first, ...later] = record.replies;
    expect(first!.calls).toBe(record.calls.length);

    // The engine's second prompt: the same calls as Continue sent them back, then their results, and the
    // prompt ends there (no user turn added).
    const turns = promptTurns(prompt);
    expect(turns.calls).toEqual(record.calls.map((c) => ({ name: c.name, arguments: c.arguments })));
    expect(turns.results.map(normalise)).toEqual(record.calls.map((c) => normalise(checklistOutput(c.arguments))));
    expect(prompt.trimEnd().endsWith('[/TOOL_RESULTS]')).toBe(true);

    // What it generated for that prompt (text, no call; now and then nothing but the end token) is what
    // Continue printed, and the last reply of its record (which skips an empty one).
    const generated = normalise(s.completion!.generated);
    expect(generated).not.toContain('[TOOL_CALLS]');
    expect(normalise(s.run.task.stdout)).toBe(generated);
    expect(later.map((r) => [r.calls, normalise(r.text)])).toEqual(generated ? [[0, generated]] : []);
  });

  it('mutation: our template without its tool-call block: no call received, nothing executed', async () => {
    const { file, cut } = await templateWithoutToolCalls(engineTemplate(apps[0] ?? (await start())));
    dirs.push(path.dirname(file));
    expect(cut).toContain("'[TOOL_CALLS]' + call['function']['name'] + '[ARGS]' + arguments");
    const app = await start(file);
    const { s, record } = await runContinue(app, 'without-tool-call-block');
    // One request, answered without a call: none in the agent's record, no tool turn in the engine's prompt.
    expectServed(s, app, 1);
    expect(record.calls).toEqual([]);
    expect(record.replies.filter((r) => r.calls > 0)).toEqual([]);
    const prompt = s.completion!.prompt;
    expect(offeredTools(prompt)).toEqual([ONLY_TOOL]);
    expect(promptTurns(prompt)).toEqual({ calls: [], results: [] });
    // (What it printed is not compared: llama-server streams this reply without any text — its parser,
    // built with no tool format, holds it back; the same request unstreamed gets the text.)
    // Why, in the engine's words: no tool-call format in the template, so no grammar and no parser.
    expect(app.engine.output()).toContain('failed to determine tool format');
  });
});

describe('reading the tool turns out of an engine prompt', () => {
  it('parallel calls, arguments holding markers and braces, their results; none in a plain prompt', () => {
    const args = { checklist: 'a "}" </s> [TOOL_CALLS]x[ARGS]{ [TOOL_RESULTS]no[/TOOL_RESULTS]' };
    const call = `[TOOL_CALLS] Checklist[ARGS] ${JSON.stringify(args)}`;
    const results = '[TOOL_RESULTS] one[/TOOL_RESULTS][TOOL_RESULTS] two[/TOOL_RESULTS]';
    const prompt = `<s>[INST] hi[/INST]${call}${call}</s>${results}`;
    expect(promptTurns(prompt)).toEqual({
      calls: [
        { name: 'Checklist', arguments: args },
        { name: 'Checklist', arguments: args },
      ],
      results: ['one', 'two'],
    });
    expect(promptTurns('<s>[INST] hi[/INST]')).toEqual({ calls: [], results: [] });
    expect(checklistOutput({ checklist: '- [ ] x' })).toBe('Task list status:\n- [ ] x');
  });
});
