/**
 * The KV-cache type and the default context on the real llama-server (llama.cpp built from source by
 * the test bed, tiny random-weight GGUFs): the KV cache the engine allocates is the RAM plan's figure
 * for every type; a quantized V cache needs the flash attention we render; a request of more than
 * 48 k tokens is accepted at the default context and refused at the old one.
 */
import { mkdir, mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliancePaths, parseContext, variableByName } from '@slm-copilot/context-schema';
import { applyFileSet, freePort, gatherHostFacts } from '@slm-copilot/task-kit';
import { KV_CACHE_TYPES, buildManifest } from '@slm-copilot/model-fetch';
import {
  ensureLlamaBuild,
  ensureTinyModel,
  loggedKvCache,
  startLlamaServer,
  type GgufModel,
  type LlamaServer,
} from '@slm-copilot/testbed';
import { modelFactsFromManifest } from './model.js';
import type { EnginePlan } from './plan.js';
import { loadChatTemplate, renderEngine } from './render.js';

const SETUP_TIMEOUT = 20 * 60_000; // a cold llama.cpp build on 2 cores
const MiB = 1024 ** 2;
const DEFAULT_CONTEXT = variableByName.get('ONEAPP_COPILOT_CONTEXT_SIZE')!.default as number;
/** The bar: a request of at least 48 k tokens accepted at the default context. */
const LONG_REQUEST = 48 * 1024;

let binary: string;
let tiny: GgufModel;
const servers: LlamaServer[] = [];

beforeAll(async () => {
  const build = await ensureLlamaBuild({ variant: 'dispatch' });
  binary = build.llamaServer;
  tiny = await ensureTinyModel({ llama: build });
}, SETUP_TIMEOUT);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

/** Renders the engine for `model` and `env` under a temp root; returns the plan and the unit's arguments. */
async function render(model: GgufModel, env: Record<string, string>) {
  const root = await mkdtemp(path.join(tmpdir(), 'kv-context-'));
  const base = appliancePaths(root);
  const paths = { ...base, engine: { ...base.engine, port: await freePort() } };
  await mkdir(paths.modelsDir, { recursive: true });
  await symlink(model.path, path.join(paths.modelsDir, path.basename(model.path)));
  const r = renderEngine({
    config: parseContext({ ONEAPP_COPILOT_ENGINE: 'llama-server', ONEAPP_COPILOT_THREADS: '2', ...env }),
    model: modelFactsFromManifest(await buildManifest(model.path)),
    host: await gatherHostFacts(),
    paths,
    chatTemplate: await loadChatTemplate(),
  });
  await applyFileSet('/', r.files);
  const unit = r.files.find((f) => f.path.endsWith(r.unit))!.text;
  const words = unit
    .split('\n')
    .find((l) => l.startsWith('ExecStart='))!
    .slice('ExecStart='.length)
    .split(' ');
  // the test bed passes --host/--port itself
  expect(words.slice(1, 5)).toEqual(['--host', '127.0.0.1', '--port', String(paths.engine.port)]);
  return { plan: r.plan, args: words.slice(5), port: paths.engine.port };
}

async function start(args: string[], port: number): Promise<LlamaServer> {
  const server = await startLlamaServer({ binary, args, host: '127.0.0.1', port });
  servers.push(server);
  return server;
}

async function chat(server: LlamaServer, content: string, maxTokens = 4) {
  const r = await fetch(`${server.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: maxTokens, temperature: 0 }),
  });
  return { status: r.status, body: (await r.json()) as { usage?: { prompt_tokens: number }; error?: unknown } };
}

describe('ONEAPP_COPILOT_KV_CACHE_TYPE on the real llama-server', () => {
  for (const type of KV_CACHE_TYPES) {
    it(`${type}: the KV cache the engine allocates is the plan's kvBytes, and it serves`, async () => {
      const { plan, args } = await render(tiny, {
        ONEAPP_COPILOT_CONTEXT_SIZE: '8192',
        ONEAPP_COPILOT_KV_CACHE_TYPE: type,
      });
      expect(plan.kvCacheType).toBe(type);
      // -lv 4: the engine's info lines (its KV cache among them); the unit runs at the default level
      const server = await start([...args, '-lv', '4'], await freePort());
      const kv = loggedKvCache(server.output());
      expect(kv).toMatchObject({ cells: plan.totalContext, typeK: type, typeV: type });
      expect(kv.layers).toBe(tiny.params.nLayer);
      // printed with 2 decimals: equal to the plan within the rounding
      expect(Math.abs(kv.totalMiB - plan.kvBytes / MiB)).toBeLessThanOrEqual(0.005);
      expect(Math.abs(kv.kMiB - plan.kvBytes / 2 / MiB)).toBeLessThanOrEqual(0.005);
      expect(kv.vMiB).toBe(kv.kMiB);
      const reply = await chat(server, 'Say hi');
      expect(reply.status, JSON.stringify(reply.body)).toBe(200);
      await server.stop();
    }, 120_000);
  }

  it('mutation: a quantized V cache without flash attention is refused (why we render -fa on)', async () => {
    const { args, port } = await render(tiny, {
      ONEAPP_COPILOT_CONTEXT_SIZE: '4096',
      ONEAPP_COPILOT_KV_CACHE_TYPE: 'q8_0',
    });
    const fa = args.indexOf('--flash-attn');
    expect(args.slice(fa, fa + 2)).toEqual(['--flash-attn', 'on']);
    const off = args.map((a, i) => (i === fa + 1 ? 'off' : a));
    await expect(start(off, port)).rejects.toThrow(/quantized V cache requires flash_attn to be enabled/);
  }, 120_000);
});

/** A prompt of plain words: ~3.3 tokens a word in the test models' 2 048-token vocabulary. */
function longPrompt(words: number): string {
  const vocabulary = ['const', 'value', 'return', 'index', 'buffer', 'stream', 'module', 'export', 'array', 'object'];
  return Array.from({ length: words }, (_, i) => vocabulary[(i * 7 + (i >> 3)) % vocabulary.length]).join(' ');
}

describe(`the default context (${DEFAULT_CONTEXT}) holds a ${LONG_REQUEST}-token request`, () => {
  let agentModel: GgufModel;
  let plan: EnginePlan;
  let server: LlamaServer;

  beforeAll(async () => {
    // the 'agent' test model: trained context 131072, so the default is not clamped to 32768
    agentModel = await ensureTinyModel({ variant: 'agent' });
    const r = await render(agentModel, {});
    plan = r.plan;
    server = await start(r.args, r.port);
  }, SETUP_TIMEOUT);

  it('the plan keeps the default context for a model trained beyond it (no warning)', () => {
    expect(plan.contextPerSlot).toBe(DEFAULT_CONTEXT);
    expect(plan.warnings).toEqual([]);
  });

  it('the default test model (trained context 32768) clamps it, with a warning naming the variable', async () => {
    const { plan: clamped } = await render(tiny, {});
    expect(clamped.contextPerSlot).toBe(32768);
    expect(clamped.warnings).toEqual([
      expect.objectContaining({ code: 'context-clamped-trained', variable: 'ONEAPP_COPILOT_CONTEXT_SIZE' }),
    ]);
  });

  it(
    `a request of more than ${LONG_REQUEST} tokens is answered; the old default (32768) refuses it`,
    async () => {
      const prompt = longPrompt(15_500);
      const reply = await chat(server, prompt, 1);
      expect(reply.status, JSON.stringify(reply.body)).toBe(200);
      const tokens = reply.body.usage!.prompt_tokens;
      expect(tokens).toBeGreaterThanOrEqual(LONG_REQUEST);
      expect(tokens).toBeLessThan(plan.contextPerSlot);

      const old = await render(agentModel, { ONEAPP_COPILOT_CONTEXT_SIZE: '32768' });
      const refused = await chat(await start(old.args, old.port), prompt, 1);
      expect(refused.status).toBe(400);
      expect(JSON.stringify(refused.body)).toMatch(/exceeds the available context size \(32768 tokens\)/);
    },
    10 * 60_000,
  );
});
