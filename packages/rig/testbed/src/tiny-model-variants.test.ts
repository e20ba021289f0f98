// The test-model variants (py/make_tiny_variant.py) measured against the real llama-server, with our chat
// template (the appliance's) and llama-server's default sampling (temperature 0.8, top-k 40, top-p 0.95,
// min-p 0.05): the appliance's rendered command line sets no sampling flag (localai-install/src/llama-server.ts).
// Counts and bounds are asserted, never times; the figures are printed.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { $ } from 'zx';
import { hashParts, sha256File } from '@slm-copilot/task-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggufContextLength } from './gguf.js';
import { ensureLlamaBuild, type LlamaBuild } from './llama-build.js';
import { startLlamaServer, type LlamaServer } from './llama-server.js';
import {
  AGENT_CONTEXT_LENGTH,
  CHAT_TEMPLATE_PATH_IN_TREE,
  SYSTEM_PYTHON,
  TINY_MODEL_PARAMS,
  ensureTinyModel,
  generatorScriptPath,
  variantScriptPath,
  type GgufModel,
} from './tiny-model.js';

/** Our chat template, as the appliance installs it (--chat-template-file). */
const OUR_TEMPLATE = fileURLToPath(
  new URL('../../../localai-install/templates/devstral-chat-template.jinja', import.meta.url),
);
const BUILD_TIMEOUT = 40 * 60_000;
const RUNS = 20;
/** A reply "ends by itself" when the engine stops on the end token within this many tokens. */
const END_WITHIN = 400;
const TOOL_CALLS_ID = 9;

let build: LlamaBuild;
let plain: GgufModel;
let agent: GgufModel;
let caller: GgufModel;
const servers: LlamaServer[] = [];
const tmps: string[] = [];

async function serve(model: GgufModel, extra: string[] = [], ctx = 8192): Promise<LlamaServer> {
  const args = ['-m', model.path, '-c', String(ctx), '--parallel', '1', '-t', '2', '--no-ui', ...extra];
  const s = await startLlamaServer({ binary: build.llamaServer, args });
  servers.push(s);
  return s;
}

async function post<T>(server: LlamaServer, path: string, body: unknown): Promise<T> {
  const r = await fetch(`${server.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`POST ${path}: HTTP ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

interface ToolCall {
  id: string;
  type: string;
  function: { name: string; arguments: string };
}
interface Chat {
  choices: { finish_reason: string; message: { content: string | null; tool_calls?: ToolCall[] } }[];
  usage: { completion_tokens: number };
}

const chatArgs = ['--jinja', '--chat-template-file', OUR_TEMPLATE, '--alias', 'devstral-small-2'];
const chat = (s: LlamaServer, body: Record<string, unknown>) =>
  post<Chat>(s, '/v1/chat/completions', { model: 'devstral-small-2', ...body });
const user = (text: string) => [{ role: 'user', content: text }];

/** One line of figures: the sorted lengths and how the replies finished. */
function figures(label: string, replies: Chat[]): void {
  const lengths = replies.map((r) => r.usage.completion_tokens).sort((a, b) => a - b);
  const reasons = replies.map((r) => r.choices[0]!.finish_reason);
  const count = (f: string) => reasons.filter((r) => r === f).length;
  console.log(
    `[variants] ${label}: ${replies.length} replies, stop ${count('stop')}, tool_calls ${count('tool_calls')}, ` +
      `length ${count('length')}; median ${median(lengths)} tokens; lengths ${lengths.join(' ')}`,
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const endedWithin = (replies: Chat[], n: number) =>
  replies.filter((r) => r.choices[0]!.finish_reason === 'stop' && r.usage.completion_tokens <= n).length;

async function sequential<T>(n: number, f: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await f(i));
  return out;
}

beforeAll(async () => {
  build = await ensureLlamaBuild({ variant: 'dispatch' });
  plain = await ensureTinyModel({ llama: build });
  agent = await ensureTinyModel({ llama: build, variant: 'agent' });
  caller = await ensureTinyModel({ llama: build, variant: 'tool-caller' });
}, BUILD_TIMEOUT);

afterAll(async () => {
  for (const s of servers) await s.stop();
  for (const d of tmps) await rm(d, { recursive: true, force: true });
}, 60_000);

describe('the default tiny model is unchanged by the variants', () => {
  it('is byte-identical to make_tiny_gguf.py run without options, and keeps its cache key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slm-variants-'));
    tmps.push(dir);
    const env = { ...process.env, PYTHONPATH: join(build.srcDir, 'gguf-py') };
    const template = join(build.srcDir, CHAT_TEMPLATE_PATH_IN_TREE);
    const f16 = join(dir, 'F16.gguf');
    await $({
      quiet: true,
      env,
    })`${SYSTEM_PYTHON} ${generatorScriptPath()} --out ${f16} --chat-template-file ${template}`;
    await $({ quiet: true })`${build.llamaQuantize} ${f16} ${join(dir, 'q.gguf')} Q4_K_M 2`;
    expect(await sha256File(join(dir, 'q.gguf'))).toBe(plain.sha256);
    // The key formula of before the variants (generator, parameters, template, llama.cpp).
    const parts = [await readFile(generatorScriptPath()), JSON.stringify(TINY_MODEL_PARAMS), await readFile(template)];
    expect(plain.key).toBe(`tiny-${hashParts([...parts, build.version, build.commit], 12)}`);
    expect(plain.variant).toBeUndefined();
    for (const v of [agent, caller]) {
      expect(v.key).not.toBe(plain.key);
      expect(v.sha256).not.toBe(plain.sha256);
    }
    // The variant script copies everything it does not edit: with the default's own weight it writes its input.
    const copy = join(dir, 'copy.gguf');
    await $({ quiet: true, env })`${SYSTEM_PYTHON} ${variantScriptPath()} --in ${f16} --out ${copy} ${[
      ...['--variant', 'agent', '--eos-weight', '-3'],
    ]}`;
    expect(await sha256File(copy)).toBe(await sha256File(f16));
  });
});

describe("variant 'agent': replies end by themselves, trained context 131072", () => {
  let server: LlamaServer;
  beforeAll(async () => {
    server = await serve(agent, chatArgs, AGENT_CONTEXT_LENGTH);
  }, 120_000);

  it('has a trained context of 131072 and llama-server serves all of it', async () => {
    expect(await ggufContextLength(agent.path)).toBe(AGENT_CONTEXT_LENGTH);
    expect(agent.bannedTokenIds).not.toContain(2);
    const props = await (await fetch(`${server.baseUrl}/props`)).json();
    expect((props as { default_generation_settings: { n_ctx: number } }).default_generation_settings.n_ctx).toBe(
      AGENT_CONTEXT_LENGTH,
    );
  });

  it(`ends ≥ ${RUNS - 1} of ${RUNS} replies on its end token within ${END_WITHIN} tokens`, async () => {
    // max_tokens only bounds a failure (finish_reason would be "length"); the property is "stop".
    const replies = await sequential(RUNS, (i) => chat(server, { messages: user(`Say hello ${i}`), max_tokens: 1000 }));
    figures('agent, default sampling', replies);
    expect(endedWithin(replies, END_WITHIN)).toBeGreaterThanOrEqual(RUNS - 1);
    // Not a reply that ends at once: a few dozen tokens typically.
    const m = median(replies.map((r) => r.usage.completion_tokens));
    expect(m).toBeGreaterThanOrEqual(5);
    expect(m).toBeLessThanOrEqual(200);
  });

  it('greedy (temperature 0): ≥ 8 of 10 prompts end within the bound too', async () => {
    const prompts = [
      'Say hello',
      'Write a function that adds two numbers in Python',
      'What is 2+2?',
      'hi',
      'Explain the nginx config file in detail please, with examples',
      'def main():',
      'The quick brown fox jumps over the lazy dog',
      'List the files',
      'Refactor this code: const x = 1; let y = x + 2;',
      'Bonjour',
    ];
    const replies = await sequential(prompts.length, (i) =>
      chat(server, { messages: user(prompts[i]!), temperature: 0, max_tokens: 1000 }),
    );
    figures('agent, temperature 0', replies);
    expect(endedWithin(replies, END_WITHIN)).toBeGreaterThanOrEqual(8);
  });

  it('control: the default model ends none of the same replies (its end token is banned)', async () => {
    const s = await serve(plain, chatArgs);
    const replies = await sequential(RUNS, (i) => chat(s, { messages: user(`Say hello ${i}`), max_tokens: 200 }));
    figures('default model, max_tokens 200', replies);
    expect(replies.filter((r) => r.choices[0]!.finish_reason === 'stop')).toEqual([]);
  });
});

const SET_MODE = {
  type: 'function',
  function: {
    name: 'set_mode',
    description: 'Set the mode',
    parameters: {
      type: 'object',
      properties: { mode: { type: 'string', enum: ['fast', 'safe'] } },
      required: ['mode'],
      additionalProperties: false,
    },
  },
};
const RUN_COMMAND = {
  type: 'function',
  function: {
    name: 'run_command',
    description: 'Run a shell command',
    parameters: {
      type: 'object',
      properties: { command: { type: 'string' }, timeout: { type: 'integer' } },
      required: ['command'],
    },
  },
};
/** A turn that has had its tool call answered: our template renders it ending in [/TOOL_RESULTS]. */
const ANSWERED = [
  { role: 'user', content: 'Set the mode' },
  {
    role: 'assistant',
    content: '',
    tool_calls: [{ id: 'call0', type: 'function', function: { name: 'set_mode', arguments: '{"mode":"fast"}' } }],
  },
  { role: 'tool', tool_call_id: 'call0', content: 'done' },
];

describe("variant 'tool-caller': a tool call after [/INST], text after a tool result", () => {
  let server: LlamaServer;
  beforeAll(async () => {
    server = await serve(caller, chatArgs);
  }, 120_000);

  it('llama.cpp serves our template with its Ministral 3 handler (chat format peg-native)', async () => {
    const verbose = await serve(caller, [...chatArgs, '-lv', '5'], 4096);
    const r = await chat(verbose, { messages: user('Set the mode'), tools: [SET_MODE] });
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    expect(verbose.output()).toContain('Using specialized template: Ministral/Magistral Large 3');
    expect(verbose.output()).toContain('chat format: peg-native');
    await verbose.stop();
  });

  it('the [/INST] signal survives both layers (final hidden state, after the output norm)', async () => {
    const s = await serve(caller, ['--embeddings', '--pooling', 'last'], 4096);
    const last = async (content: string) => {
      const r = await post<{ embedding: number[] | number[][] }[]>(s, '/embedding', { content, embd_normalize: -1 });
      const e = r[0]!.embedding;
      return Array.isArray(e[0]) ? (e as number[][]).at(-1)! : (e as number[]);
    };
    const ratio = async (content: string) => {
      const h = await last(content);
      return h[1]! / h[0]!;
    };
    // In the embedding the signal equals the constant (16 and 16): a ratio of 1 before the layers.
    const atInst = [
      await ratio('[INST]Say hello[/INST]'),
      await ratio('[INST]Write a long function please[/INST]'),
      await ratio('[INST]a[/INST][TOOL_CALLS]x[ARGS]{}</s>[TOOL_RESULTS]ok[/TOOL_RESULTS][INST]again[/INST]'),
    ];
    const elsewhere = [
      await ratio('[INST]a[/INST]the'),
      await ratio('[INST]Say hello[/INST][TOOL_CALLS]x[ARGS]{}</s>[TOOL_RESULTS]done[/TOOL_RESULTS]'),
      await ratio('[INST]hello world'),
    ];
    const f = (xs: number[]) => xs.map((x) => x.toFixed(3)).join(' ');
    console.log(`[variants] h1/h0 after [/INST]: ${f(atInst)}; elsewhere: ${f(elsewhere)}`);
    for (const x of atInst) expect(x).toBeGreaterThan(0.8);
    for (const x of elsewhere) expect(Math.abs(x)).toBeLessThan(0.1);
  });

  it(`first token after [/INST] is [TOOL_CALLS] (${RUNS} of ${RUNS}); after [/TOOL_RESULTS] never`, async () => {
    const first = async (prompt: string) =>
      (await post<{ tokens: number[] }>(server, '/completion', { prompt, n_predict: 1, return_tokens: true }))
        .tokens[0];
    const afterInst = await sequential(RUNS, (i) => first(`[INST]Say hello ${i}[/INST]`));
    const afterResult = await sequential(RUNS, (i) =>
      first(`[INST]Say hello[/INST][TOOL_CALLS]x[ARGS]{}</s>[TOOL_RESULTS]result ${i}[/TOOL_RESULTS]`),
    );
    expect(afterInst).toEqual(Array<number>(RUNS).fill(TOOL_CALLS_ID));
    expect(afterResult).not.toContain(TOOL_CALLS_ID);
  });

  it(`a chat with a tool comes back as tool_calls (≥ ${RUNS - 1} of ${RUNS}), arguments from the schema`, async () => {
    const ms: number[] = [];
    const replies = await sequential(RUNS, async (i) => {
      const t0 = performance.now();
      const r = await chat(server, { messages: user(`Set the mode ${i}`), tools: [SET_MODE] });
      ms.push(performance.now() - t0);
      return r;
    });
    figures('tool-caller, enum tool', replies);
    console.log(`[variants] tool-call latency on the bare engine: median ${median(ms).toFixed(0)} ms`);
    const good = replies.filter((r) => {
      const c = r.choices[0]!;
      const call = c.message.tool_calls?.[0];
      if (c.finish_reason !== 'tool_calls' || call?.function.name !== 'set_mode') return false;
      const args = JSON.parse(call.function.arguments) as { mode?: string };
      return ['fast', 'safe'].includes(args.mode ?? '') && Object.keys(args).length === 1;
    });
    expect(good.length).toBeGreaterThanOrEqual(RUNS - 1);
  });

  it(`free-text arguments close: ≥ ${RUNS - 1} of ${RUNS} calls complete within 150 tokens`, async () => {
    const replies = await sequential(RUNS, (i) =>
      chat(server, { messages: user(`List the files ${i}`), tools: [RUN_COMMAND], parallel_tool_calls: false }),
    );
    figures('tool-caller, free-text tool', replies);
    const good = replies.filter((r) => {
      const calls = r.choices[0]!.message.tool_calls ?? [];
      if (r.choices[0]!.finish_reason !== 'tool_calls' || calls.length !== 1) return false;
      const args = JSON.parse(calls[0]!.function.arguments) as { command?: unknown };
      return typeof args.command === 'string' && r.usage.completion_tokens <= 150;
    });
    expect(good.length).toBeGreaterThanOrEqual(RUNS - 1);
  });

  it(`after a tool result it answers text and ends (≥ ${RUNS - 1} of ${RUNS})`, async () => {
    const replies = await sequential(RUNS, () =>
      chat(server, { messages: ANSWERED, tools: [SET_MODE], max_tokens: 1000 }),
    );
    figures('tool-caller, after a tool result', replies);
    expect(replies.filter((r) => r.choices[0]!.message.tool_calls?.length)).toEqual([]);
    expect(endedWithin(replies, END_WITHIN)).toBeGreaterThanOrEqual(RUNS - 1);
  });
});
