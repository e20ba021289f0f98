// Tool calls through the gateway, as the three APIs the agents speak return them: OpenAI chat
// `tool_calls` (plain and streamed, with the official `openai` client), Anthropic `tool_use` blocks on
// /v1/messages (plain and streamed, fetch) and a `function_call` item on /v1/responses. The calls are
// made by the real engine: the tool-caller test model emits [TOOL_CALLS] after [/INST], and
// llama-server's tool-call grammar (lazy, triggered by [TOOL_CALLS]) forces the rest from the schema.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { sseEvents, trustingFetch } from '@slm-copilot/nginx-config/test-support/client';
import { MODEL_ID, type Appliance } from './appliance.js';

/** The one tool offered: its only argument is an enum of one value, so the grammar forces the whole call. */
export const TOOL = {
  name: 'set_mode',
  description: 'Set the editor mode',
  parameters: {
    type: 'object',
    properties: { mode: { type: 'string', enum: ['fast'] } },
    required: ['mode'],
    additionalProperties: false,
  },
} as const;
/** What every parsed call must be. */
export const EXPECTED_CALL = { name: TOOL.name, arguments: { mode: 'fast' } };
export const PROMPT = 'Switch the editor to fast mode.';
/** Bounds a failure only: the tool-caller model ends its replies itself. */
const MAX_TOKENS = 1000;

export type Api = 'chat' | 'chat-stream' | 'messages' | 'messages-stream' | 'responses';

/** What one API returned, parsed the way its clients parse it. */
export interface Observed {
  api: Api;
  /** Every tool call of the reply (name, arguments parsed from JSON). */
  calls: { name: string; arguments: unknown }[];
  /** The reply's text, if any. */
  text: string;
  /** finish_reason / stop_reason / status, as the API says it. */
  finish: string;
  ms: number;
}

interface Target {
  origin: string;
  key: string;
  fetch: typeof fetch;
}

/** The appliance's origin, the key of `keyOf` and a fetch that trusts the per-VM CA (the file users get). */
export async function target(app: Appliance, keyOf: string): Promise<Target> {
  const key = app.keys[keyOf];
  if (!key) throw new Error(`the appliance has no key for ${keyOf}`);
  const ca = await readFile(app.caFile, 'utf8');
  return { origin: app.origin, key: key.value, fetch: trustingFetch({ ca }) };
}

const openai = (t: Target) =>
  new OpenAI({ baseURL: `${t.origin}/v1`, apiKey: t.key, maxRetries: 0, timeout: 120_000, fetch: t.fetch });

const parse = (args: string): unknown => JSON.parse(args || '{}');

async function timedObserve(api: Api, f: () => Promise<Omit<Observed, 'api' | 'ms'>>): Promise<Observed> {
  const t0 = performance.now();
  const r = await f();
  return { api, ...r, ms: Math.round(performance.now() - t0) };
}

const chatTools = [{ type: 'function' as const, function: { ...TOOL, parameters: { ...TOOL.parameters } } }];

function viaChat(t: Target): Promise<Observed> {
  return timedObserve('chat', async () => {
    const r = await openai(t).chat.completions.create({
      model: MODEL_ID,
      messages: [{ role: 'user', content: PROMPT }],
      tools: chatTools,
      max_tokens: MAX_TOKENS,
    });
    const c = r.choices[0]!;
    const calls = (c.message.tool_calls ?? []).flatMap((tc) =>
      tc.type === 'function' ? [{ name: tc.function.name, arguments: parse(tc.function.arguments) }] : [],
    );
    return { calls, text: c.message.content ?? '', finish: c.finish_reason };
  });
}

function viaChatStream(t: Target): Promise<Observed> {
  return timedObserve('chat-stream', async () => {
    const stream = await openai(t).chat.completions.create({
      model: MODEL_ID,
      messages: [{ role: 'user', content: PROMPT }],
      tools: chatTools,
      max_tokens: MAX_TOKENS,
      stream: true,
    });
    const byIndex = new Map<number, { name: string; args: string }>();
    let text = '';
    let finish = '';
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      text += c.delta.content ?? '';
      for (const d of c.delta.tool_calls ?? []) {
        const acc = byIndex.get(d.index) ?? { name: '', args: '' };
        acc.name += d.function?.name ?? '';
        acc.args += d.function?.arguments ?? '';
        byIndex.set(d.index, acc);
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
    const calls = [...byIndex.values()].map((a) => ({ name: a.name, arguments: parse(a.args) }));
    return { calls, text, finish };
  });
}

const messagesBody = (stream: boolean) => ({
  model: MODEL_ID,
  max_tokens: MAX_TOKENS,
  messages: [{ role: 'user', content: PROMPT }],
  tools: [{ name: TOOL.name, description: TOOL.description, input_schema: TOOL.parameters }],
  stream,
});

async function postMessages(t: Target, stream: boolean): Promise<string> {
  const r = await t.fetch(`${t.origin}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': t.key, 'anthropic-version': '2023-06-01' },
    body: JSON.stringify(messagesBody(stream)),
  });
  const body = await r.text();
  if (r.status !== 200) throw new Error(`POST /v1/messages: HTTP ${r.status} ${body.slice(0, 500)}`);
  return body;
}

interface MessagesBlock {
  type: string;
  text?: string;
  name?: string;
  input?: unknown;
}

function viaMessages(t: Target): Promise<Observed> {
  return timedObserve('messages', async () => {
    const r = JSON.parse(await postMessages(t, false)) as { content: MessagesBlock[]; stop_reason: string };
    const calls = r.content.filter((b) => b.type === 'tool_use').map((b) => ({ name: b.name!, arguments: b.input }));
    const text = r.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
    return { calls, text, finish: r.stop_reason };
  });
}

interface MessagesEvent {
  type: string;
  index?: number;
  content_block?: MessagesBlock;
  delta?: { type?: string; text?: string; partial_json?: string; stop_reason?: string };
}

function viaMessagesStream(t: Target): Promise<Observed> {
  return timedObserve('messages-stream', async () => {
    const events = sseEvents(await postMessages(t, true)).flatMap((e) =>
      e
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => JSON.parse(l.slice(6)) as MessagesEvent),
    );
    const blocks = new Map<number, { name: string; json: string }>();
    let text = '';
    let finish = '';
    for (const e of events) {
      if (e.type === 'content_block_start' && e.content_block?.type === 'tool_use')
        blocks.set(e.index!, { name: e.content_block.name ?? '', json: '' });
      if (e.type === 'content_block_delta' && e.delta?.type === 'input_json_delta')
        blocks.get(e.index!)!.json += e.delta.partial_json ?? '';
      if (e.type === 'content_block_delta' && e.delta?.type === 'text_delta') text += e.delta.text ?? '';
      if (e.type === 'message_delta' && e.delta?.stop_reason) finish = e.delta.stop_reason;
    }
    const calls = [...blocks.values()].map((b) => ({ name: b.name, arguments: parse(b.json) }));
    return { calls, text, finish };
  });
}

function viaResponses(t: Target): Promise<Observed> {
  return timedObserve('responses', async () => {
    const r = await openai(t).responses.create({
      model: MODEL_ID,
      input: [{ role: 'user', content: PROMPT }],
      tools: [{ type: 'function', ...TOOL, parameters: { ...TOOL.parameters }, strict: false }],
      max_output_tokens: MAX_TOKENS,
    });
    const calls = r.output.flatMap((o) =>
      o.type === 'function_call' ? [{ name: o.name, arguments: parse(o.arguments) }] : [],
    );
    return { calls, text: r.output_text, finish: r.status ?? '' };
  });
}

/** The same request through each API, one after the other. */
export async function observeAll(t: Target): Promise<Observed[]> {
  const out: Observed[] = [];
  for (const f of [viaChat, viaChatStream, viaMessages, viaMessagesStream, viaResponses]) out.push(await f(t));
  return out;
}

/** The start of our template's tool-call block (the assistant turn's `[TOOL_CALLS]name[ARGS]arguments`). */
const BLOCK_START = "{%- if has_calls -%}\n                {%- for call in message['tool_calls'] -%}";
const BLOCK_END = '{%- endfor -%}\n            {%- endif -%}';

/**
 * Mutation: a copy of `templateFile` without its tool-call block, the part that renders an assistant's
 * tool calls as `[TOOL_CALLS]name[ARGS]arguments` (and with it the only `[TOOL_CALLS]`/`[ARGS]` of the
 * template, which is what llama.cpp recognises the format by). Returns the copy and what was cut.
 */
export async function templateWithoutToolCalls(templateFile: string): Promise<{ file: string; cut: string }> {
  const text = await readFile(templateFile, 'utf8');
  const start = text.indexOf(BLOCK_START);
  const end = text.indexOf(BLOCK_END, start);
  if (start < 0 || end < 0) throw new Error(`${templateFile}: the tool-call block was not found (template changed?)`);
  const cut = text.slice(start, end + BLOCK_END.length);
  const dir = await mkdtemp(path.join(tmpdir(), 'slm-agents-template-'));
  const file = path.join(dir, 'without-tool-calls.jinja');
  await writeFile(file, text.slice(0, start) + text.slice(end + BLOCK_END.length));
  return { file, cut };
}

/** The --chat-template-file the appliance's engine runs with. */
export function engineTemplate(app: Appliance): string {
  const at = app.engineArgs.indexOf('--chat-template-file');
  if (at < 0) throw new Error('the rendered engine has no --chat-template-file');
  return app.engineArgs[at + 1]!;
}
