/**
 * The rendered llama-server configuration, run for real: llama.cpp built from source (test bed),
 * a tiny random-weight GGUF with Mistral 2512's stock chat template embedded, the official
 * `openai` client.
 */
import { mkdir, mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliancePaths, parseContext, type AppliancePaths } from '@slm-copilot/context-schema';
import { freePort, gatherHostFacts } from '@slm-copilot/task-kit';
import { buildManifest } from '@slm-copilot/model-fetch';
import { ensureLlamaBuild, ensureTinyModel, startLlamaServer, type LlamaServer } from '@slm-copilot/testbed';
import { modelFactsFromManifest } from './model.js';
import { loadChatTemplate, renderEngine } from './render.js';
import { applyFileSet } from '@slm-copilot/task-kit';

const MODEL_ID = 'devstral-small-2';
const SETUP_TIMEOUT = 20 * 60_000; // a cold llama.cpp build on 2 cores
/** ONEAPP_COPILOT_MAX_TOKENS for this engine: rendered as `--n-predict`. */
const REPLY_CAP = 16;

let ours: LlamaServer;
let stock: LlamaServer;
let paths: AppliancePaths;

/** The rendered unit's ExecStart, split into argv (the renderer only emits plain words). */
function execStart(unitText: string): string[] {
  const line = unitText.split('\n').find((l) => l.startsWith('ExecStart='));
  if (!line) throw new Error('no ExecStart in unit');
  return line.slice('ExecStart='.length).split(' ');
}

beforeAll(async () => {
  const build = await ensureLlamaBuild({ variant: 'dispatch' });
  const model = await ensureTinyModel({ llama: build });
  const root = await mkdtemp(path.join(tmpdir(), 'engine-run-'));
  const base = appliancePaths(root);
  paths = { ...base, engine: { ...base.engine, port: await freePort() } };
  await mkdir(paths.modelsDir, { recursive: true });
  await symlink(model.path, path.join(paths.modelsDir, path.basename(model.path)));
  await mkdir(path.dirname(paths.engine.llamaServerBinary), { recursive: true });
  await symlink(build.llamaServer, paths.engine.llamaServerBinary);

  const config = parseContext({
    ONEAPP_COPILOT_ENGINE: 'llama-server',
    ONEAPP_COPILOT_CONTEXT_SIZE: '4096',
    ONEAPP_COPILOT_THREADS: '2',
    // a small reply cap, so that the cap tests below stay fast
    ONEAPP_COPILOT_MAX_TOKENS: String(REPLY_CAP),
  });
  const render = renderEngine({
    config,
    model: modelFactsFromManifest(await buildManifest(model.path)),
    host: await gatherHostFacts(),
    paths,
    chatTemplate: await loadChatTemplate(),
  });
  await applyFileSet('/', render.files);
  const unit = render.files.find((f) => f.path.endsWith(render.unit))!;
  const [binary, ...rendered] = execStart(unit.text);
  // the test bed passes --host/--port itself: check the rendered ones, then hand them over
  expect(rendered.slice(0, 4)).toEqual(['--host', '127.0.0.1', '--port', String(paths.engine.port)]);
  const args = rendered.slice(4);
  expect(args.slice(args.indexOf('--n-predict'), args.indexOf('--n-predict') + 2)).toEqual([
    '--n-predict',
    String(REPLY_CAP),
  ]);
  ours = await startLlamaServer({ binary: binary!, args, host: '127.0.0.1', port: paths.engine.port });

  // two mutations of the render: the GGUF's own (stock Mistral 2512) template, and no reply cap
  const mutated = ['--chat-template-file', '--n-predict'];
  const stockArgs = args.filter((a, i) => !mutated.includes(a) && !mutated.includes(args[i - 1]!));
  stock = await startLlamaServer({ binary: binary!, args: stockArgs, host: '127.0.0.1', port: await freePort() });
}, SETUP_TIMEOUT);

afterAll(async () => {
  await Promise.all([ours?.stop(), stock?.stop()]);
});

const client = (server: LlamaServer) =>
  new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: 'unused-by-a-bare-engine', maxRetries: 0 });

/** The parts of an OpenAI chat completion response these tests read. */
interface ChatBody {
  choices: { message: unknown }[];
  usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } };
}

async function chat(server: LlamaServer, body: Record<string, unknown>) {
  const r = await fetch(`${server.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL_ID, max_tokens: 8, temperature: 0, ...body }),
  });
  return { status: r.status, body: (await r.json()) as ChatBody };
}

/**
 * What Cline sends: a system prompt, a user turn, an assistant tool call with a UUID id, its result,
 * then the user again.
 */
const clineConversation = [
  { role: 'system', content: 'You are Cline, a coding agent. Use tools to read files.' },
  { role: 'user', content: 'What does main.ts do?' },
  {
    role: 'assistant',
    content: '',
    tool_calls: [
      {
        id: 'call_6f1c2b0e-8d3a-4c55-9a51-3f0b7c1d2e4f',
        type: 'function',
        function: { name: 'read_file', arguments: '{"path":"main.ts"}' },
      },
    ],
  },
  { role: 'tool', tool_call_id: 'call_6f1c2b0e-8d3a-4c55-9a51-3f0b7c1d2e4f', content: 'console.log("hi")' },
  { role: 'user', content: '[TASK RESUMPTION] Continue, and explain it in one line.' },
];
const consecutiveUsers = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Here is my file.' },
  { role: 'user', content: 'Now fix the bug in it.' },
];
const tools = [
  {
    type: 'function',
    function: {
      name: 'read_file',
      description: 'Read a file',
      parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] },
    },
  },
];

describe('llama-server from the rendered unit', () => {
  it('publishes the stable model id', async () => {
    const models = await client(ours).models.list();
    expect(models.data.map((m) => m.id)).toContain(MODEL_ID);
  });

  it('streams a chat completion that ends with data: [DONE] (raw SSE)', async () => {
    const r = await fetch(`${ours.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL_ID,
        stream: true,
        max_tokens: 12,
        messages: [{ role: 'user', content: 'Say hi' }],
      }),
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/event-stream/);
    const text = await r.text();
    const events = text.split('\n\n').filter(Boolean);
    expect(events.length).toBeGreaterThan(2);
    expect(events.at(-1)!.trim()).toBe('data: [DONE]');
  });

  it('the openai client streams content and a final usage chunk (stream_options.include_usage, as Cline)', async () => {
    const stream = await client(ours).chat.completions.create({
      model: MODEL_ID,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 12,
      messages: [{ role: 'user', content: 'Write a haiku about tests' }],
    });
    let content = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      content += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(chunks).toBeGreaterThan(1);
    expect(content.length).toBeGreaterThan(0);
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    expect(usage?.prompt_tokens).toBeGreaterThan(0);
  });

  for (const [name, messages] of [
    ['a Cline tool round-trip followed by a user message', clineConversation],
    ['two consecutive user messages', consecutiveUsers],
  ] as const) {
    it(`our template accepts ${name}; the stock Mistral 2512 template refuses it`, async () => {
      const withOurs = await chat(ours, { messages, tools });
      expect(withOurs.status, JSON.stringify(withOurs.body)).toBe(200);
      expect(withOurs.body.choices[0]?.message).toBeDefined();
      const withStock = await chat(stock, { messages, tools });
      expect(withStock.status).toBe(500);
      expect(JSON.stringify(withStock.body)).toMatch(/roles must alternate/);
    });
  }

  it('reuses the prompt cache: a repeated prompt reports cached tokens', async () => {
    const messages = [
      { role: 'system', content: `You are a coding agent. ${'Follow the rules carefully. '.repeat(60)}` },
      { role: 'user', content: 'List the files.' },
    ];
    const first = await chat(ours, { messages });
    const second = await chat(ours, { messages });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(0);
    expect(second.body.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(second.body.usage.prompt_tokens / 2);
  });
});

/** What a finished chat reports: why it stopped and how many tokens it generated. */
interface Finish {
  finishReason: string | null | undefined;
  completionTokens: number | undefined;
}

/**
 * One chat without the agent's usual limit unless `limit` is given. `ignore_eos` (a llama-server
 * request field) keeps the tiny test model from ending on its own, so only a token limit can stop it.
 */
async function finish(server: LlamaServer, limit: Record<string, number>, stream: boolean): Promise<Finish> {
  const r = await fetch(`${server.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: MODEL_ID,
      temperature: 0,
      ignore_eos: true,
      messages: [{ role: 'user', content: 'Write a long story.' }],
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
      ...limit,
    }),
  });
  expect(r.status).toBe(200);
  if (!stream) {
    const body = (await r.json()) as {
      choices: { finish_reason: string }[];
      usage: { completion_tokens: number };
    };
    return { finishReason: body.choices[0]?.finish_reason, completionTokens: body.usage.completion_tokens };
  }
  const out: Finish = { finishReason: undefined, completionTokens: undefined };
  for (const line of (await r.text()).split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const chunk = JSON.parse(line.slice('data: '.length)) as {
      choices: { finish_reason: string | null }[];
      usage?: { completion_tokens: number };
    };
    out.finishReason = chunk.choices[0]?.finish_reason ?? out.finishReason;
    if (chunk.usage) out.completionTokens = chunk.usage.completion_tokens;
  }
  return out;
}

describe(`the reply cap (ONEAPP_COPILOT_MAX_TOKENS=${REPLY_CAP} → --n-predict ${REPLY_CAP})`, () => {
  for (const stream of [false, true]) {
    const mode = stream ? 'streamed' : 'not streamed';
    it(`a request without max_tokens stops at the cap with finish_reason "length" (${mode})`, async () => {
      expect(await finish(ours, {}, stream)).toEqual({ finishReason: 'length', completionTokens: REPLY_CAP });
    });
  }

  it('mutation: the same engine without --n-predict generates past the cap (read that far, then hang up)', async () => {
    const abort = new AbortController();
    const r = await fetch(`${stock.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL_ID,
        stream: true,
        ignore_eos: true,
        messages: [{ role: 'user', content: 'Write a long story.' }],
      }),
      signal: abort.signal,
    });
    let tokens = 0;
    let finishReason: string | null = null;
    const decoder = new TextDecoder();
    let buffered = '';
    const reader = r.body!.getReader();
    while (tokens <= REPLY_CAP && finishReason === null) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines.filter((l) => l.startsWith('data: {'))) {
        type Chunk = { choices: { delta: { content?: string }; finish_reason: string | null }[] };
        const choice = (JSON.parse(line.slice('data: '.length)) as Chunk).choices[0];
        // a content chunk carries one token (or none yet of a split UTF-8 character): a lower bound
        if (choice?.delta.content) tokens++;
        finishReason = choice?.finish_reason ?? finishReason;
      }
    }
    abort.abort();
    expect(finishReason).toBeNull();
    expect(tokens).toBeGreaterThan(REPLY_CAP);
  });

  it("a request's own smaller max_tokens is honoured", async () => {
    expect(await finish(ours, { max_tokens: 5 }, false)).toEqual({ finishReason: 'length', completionTokens: 5 });
  });

  it("a request's own larger max_tokens is NOT clamped: llama-server gives the request priority", async () => {
    // tools/server/server-context.cpp:1817-1818 of the pinned tree; the cap bounds only requests without a limit
    const larger = REPLY_CAP + 8;
    expect(await finish(ours, { max_tokens: larger }, false)).toEqual({
      finishReason: 'length',
      completionTokens: larger,
    });
    expect(await finish(ours, { max_completion_tokens: larger }, true)).toEqual({
      finishReason: 'length',
      completionTokens: larger,
    });
  });
});
