// Tool calls, parsed (issue #13, item 4): through the real gateway (rendered nginx, TLS with the per-VM
// CA, a user key) in front of the rendered engine (llama-server, our chat template, our flags), a reply
// comes back as OpenAI `tool_calls` (plain and streamed), Anthropic `tool_use` blocks (plain and
// streamed) and a `function_call` item on /v1/responses.
// What forces the call, in the real engine (never a fake upstream): the testbed's 'tool-caller' model,
// whose weights make `[TOOL_CALLS]` its first token after `[/INST]`, and llama-server's tool-call grammar
// (lazy, triggered by `[TOOL_CALLS]`), which forces the rest: the only tool's name, `[ARGS]`, and arguments
// whose one field is an enum of one value. No tool_choice is sent.
// Mutation: our template without its tool-call block must lose every one of them.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { ensureTinyModel } from '@slm-copilot/testbed';
import { afterAll, describe, expect, it } from 'vitest';
import { startAppliance, type Appliance } from './appliance.js';
import { parseAccessLog } from './evidence.js';
import {
  EXPECTED_CALL,
  engineTemplate,
  observeAll,
  target,
  templateWithoutToolCalls,
  type Observed,
} from './tool-calls.js';

const CLIENT = 'tool-client';
const apps: Appliance[] = [];
const dirs: string[] = [];

const start = async (chatTemplateFile?: string) => {
  const app = await startAppliance({
    agents: [CLIENT],
    model: (build) => ensureTinyModel({ llama: build, variant: 'tool-caller' }),
    ...(chatTemplateFile ? { chatTemplateFile } : {}),
  });
  apps.push(app);
  return app;
};

afterAll(async () => {
  for (const a of apps) await a.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function report(label: string, seen: Observed[]): void {
  for (const o of seen) {
    const calls = o.calls.map((c) => `${c.name}(${JSON.stringify(c.arguments)})`).join(', ') || 'no call';
    console.log(
      `[tool-calls] ${label} ${o.api}: ${calls}; finish ${o.finish}; text ${o.text.length} chars; ${o.ms} ms`,
    );
  }
}

/** The gateway saw each API's endpoint under the client's key, every answer 200. */
async function expectLogged(app: Appliance): Promise<void> {
  const v1 = (log: string) => parseAccessLog(log).filter((e) => e.path.startsWith('/v1/'));
  // Five requests were made; a streamed one's line can land just after its client finished reading.
  const entries = v1(await app.gateway.accessLog({ until: (log) => v1(log).length >= 5 }));
  expect(entries.map((e) => `${e.method} ${e.path.split('?')[0]} ${e.status} ${e.key}`)).toEqual([
    ...Array<string>(2).fill(`POST /v1/chat/completions 200 ${app.keys[CLIENT]!.name}`),
    ...Array<string>(2).fill(`POST /v1/messages 200 ${app.keys[CLIENT]!.name}`),
    `POST /v1/responses 200 ${app.keys[CLIENT]!.name}`,
  ]);
}

describe('tool calls through the gateway, parsed by each API', () => {
  it('OpenAI tool_calls (plain, stream), Anthropic tool_use (plain, stream), Responses function_call', async () => {
    const app = await start();
    const seen = await observeAll(await target(app, CLIENT));
    report('our template', seen);
    const finish = { chat: 'tool_calls', 'chat-stream': 'tool_calls', messages: 'tool_use' } as const;
    for (const o of seen) {
      // At least one call (llama-server allows parallel calls); every call is the forced one.
      expect(o.calls.length, o.api).toBeGreaterThanOrEqual(1);
      for (const c of o.calls) expect(c, o.api).toEqual(EXPECTED_CALL);
      expect(o.text, o.api).toBe('');
      const want = o.api === 'messages-stream' ? 'tool_use' : o.api === 'responses' ? 'completed' : finish[o.api];
      expect(o.finish, o.api).toBe(want);
    }
    await expectLogged(app);
  });

  it('mutation: our template without its tool-call block gives text instead of a call on every API', async () => {
    // The template the rendered engine runs with (the first test's appliance, or a fresh one).
    const { file, cut } = await templateWithoutToolCalls(engineTemplate(apps[0] ?? (await start())));
    dirs.push(path.dirname(file));
    // What was cut: the assistant turn's `[TOOL_CALLS]name[ARGS]arguments` rendering.
    expect(cut).toContain("'[TOOL_CALLS]' + call['function']['name'] + '[ARGS]' + arguments");
    const app = await start(file);
    const seen = await observeAll(await target(app, CLIENT));
    report('without the tool-call block', seen);
    for (const o of seen) {
      expect(o.calls, o.api).toEqual([]);
      expect(['stop', 'end_turn', 'completed', 'length', 'max_tokens', 'incomplete'], o.api).toContain(o.finish);
    }
    // Why, in the engine's words: no tool-call format in the template, so no grammar and no parser.
    expect(app.engine.output()).toContain('failed to determine tool format');
    await expectLogged(app);
  });
});
