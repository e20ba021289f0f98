import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI from 'openai';
import { $ } from 'zx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ggufContextLength, readGgufMetadata } from './gguf.js';
import { ensureLlamaBuild, llamaBuildKey, type LlamaBuild } from './llama-build.js';
import { startLlamaServer, type LlamaServer } from './llama-server.js';
import {
  CHAT_TEMPLATE_PATH_IN_TREE,
  SYSTEM_PYTHON,
  TINY_MODEL_PARAMS,
  ensureTinyModel,
  type GgufModel,
} from './tiny-model.js';

// A cold engine build takes ~4.5 min on 2 cores (more on a busy machine); cached it is instant.
const BUILD_TIMEOUT = 40 * 60_000;

let build: LlamaBuild;
let model: GgufModel;
let server: LlamaServer;
let client: OpenAI;

beforeAll(async () => {
  build = await ensureLlamaBuild({ variant: 'dispatch' });
  model = await ensureTinyModel({ llama: build });
  server = await startLlamaServer({
    binary: build.llamaServer,
    args: ['-m', model.path, '--jinja', '-c', '4096', '--alias', 'devstral-small-2', '-t', '2'],
  });
  client = new OpenAI({ baseURL: `${server.baseUrl}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
}, BUILD_TIMEOUT);

afterAll(async () => {
  await server?.stop();
}, 30_000);

describe('llama.cpp build (dispatch: the one the image ships and every host test runs)', () => {
  it('has the three binaries and a manifest in the keyed cache directory', async () => {
    expect(build.variant).toBe('dispatch');
    expect(build.version).toBe('3.21.1');
    expect(build.key).toBe(llamaBuildKey('dispatch'));
    expect(build.binDir.endsWith(join('llama.cpp', build.key, 'bin'))).toBe(true);
    for (const bin of [build.llamaServer, build.llamaQuantize, build.llamaBench]) {
      expect((await stat(bin)).mode & 0o111).not.toBe(0);
    }
    const manifest = JSON.parse(await readFile(join(build.binDir, '..', 'build.json'), 'utf8')) as {
      cmakeFlags: string[];
    };
    expect(manifest.cmakeFlags).toContain('-DGGML_BACKEND_DL=ON');
    // only the shipped modules are built (llama-dispatch.ts)
    expect(manifest.cmakeFlags).toContain('-DGGML_CPU_ALL_VARIANTS=ON');
    expect(manifest.cmakeFlags).toContain('-DGGML_NATIVE=OFF');
  });

  it('runs under QEMU TCG -cpu max: no AVX-512 code in the executable and haswell module; zen4 has it', async () => {
    // AVX-512 code uses zmm registers; the AVX2 path has none.
    const zmm = async (file: string) =>
      (await $({ quiet: true })`objdump -d --no-show-raw-insn ${file}`).stdout.includes('%zmm');
    expect(await zmm(build.llamaServer)).toBe(false);
    expect(await zmm(join(build.binDir, 'libggml-cpu-haswell.so'))).toBe(false);
    expect(await zmm(join(build.binDir, 'libggml-cpu-zen4.so'))).toBe(true);
  }, 120_000);

  it('is served from the cache on the second call', async () => {
    const before = (await stat(build.llamaServer)).mtimeMs;
    const again = await ensureLlamaBuild({ variant: 'dispatch' });
    expect(again.llamaServer).toBe(build.llamaServer);
    // nothing was rebuilt: the cached binary is the very same file
    expect((await stat(again.llamaServer)).mtimeMs).toBe(before);
  });
});

describe('tiny model', () => {
  it('is a small Q4_K_M GGUF with a trained context of 32768', async () => {
    expect(model.bytes).toBeGreaterThan(500_000);
    expect(model.bytes).toBeLessThan(10_000_000);
    expect((await stat(model.path)).size).toBe(model.bytes);
    expect(await ggufContextLength(model.path)).toBe(32768);
    const { metadata } = await readGgufMetadata(model.path);
    expect(metadata['general.architecture']).toBe('mistral3');
    expect(metadata['mistral3.block_count']).toBe(TINY_MODEL_PARAMS.nLayer);
    expect(metadata['mistral3.embedding_length']).toBe(256);
    expect(metadata['general.file_type']).toBe(15); // LLAMA_FTYPE_MOSTLY_Q4_K_M
    expect(metadata['tokenizer.ggml.model']).toBe('llama');
    expect(metadata['tokenizer.ggml.tokens']).toEqual({ arrayType: 8, length: 2048 });
    const template = await readFile(join(build.srcDir, CHAT_TEMPLATE_PATH_IN_TREE), 'utf8');
    expect(metadata['tokenizer.chat_template']).toBe(template);
  });

  it('agrees with gguf-py’s own reader (gguf_dump.py)', async () => {
    const r = await $({
      quiet: true,
      env: { ...process.env, PYTHONPATH: join(build.srcDir, 'gguf-py') },
    })`${SYSTEM_PYTHON} ${join(
      build.srcDir,
      'gguf-py/gguf/scripts/gguf_dump.py',
    )} --json --json-array --no-tensors ${model.path}`;
    const dump = JSON.parse(r.stdout) as { metadata: Record<string, { value: unknown }> };
    expect(dump.metadata['mistral3.context_length']?.value).toBe(32768);
    const tokens = dump.metadata['tokenizer.ggml.tokens']?.value as string[];
    for (const t of [
      '<s>',
      '</s>',
      '[INST]',
      '[/INST]',
      '[SYSTEM_PROMPT]',
      '[/SYSTEM_PROMPT]',
      '[TOOL_CALLS]',
      '[AVAILABLE_TOOLS]',
      '[TOOL_RESULTS]',
      '[ARGS]',
      '[CALL_ID]',
      '[THINK]',
      '[/THINK]',
      '<0x00>',
      '<0xFF>',
    ]) {
      expect(tokens).toContain(t);
    }
  }, 60_000);

  it('is generated deterministically (same script + seed = same bytes)', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'testbed-gguf-'));
    try {
      const env = { ...process.env, PYTHONPATH: join(build.srcDir, 'gguf-py') };
      const script = join(import.meta.dirname, '..', 'py', 'make_tiny_gguf.py');
      const sums: string[] = [];
      for (const name of ['a.gguf', 'b.gguf']) {
        await $({ quiet: true, env })`${SYSTEM_PYTHON} ${script} --out ${join(dir, name)} --seed 7`;
        sums.push((await $({ quiet: true })`sha256sum ${join(dir, name)}`).stdout.split(' ')[0]!);
      }
      expect(sums[0]).toBe(sums[1]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('llama-server with the tiny model', () => {
  it('lists the alias in /v1/models', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toContain('devstral-small-2');
  });

  it('answers a non-stream chat completion with 200 and content', async () => {
    const r = await client.chat.completions.create({
      model: 'devstral-small-2',
      messages: [{ role: 'user', content: 'Write a hello world in Python.' }],
      max_tokens: 32,
      seed: 1,
    });
    const content = r.choices[0]?.message.content ?? '';
    expect(content.length).toBeGreaterThan(0);
    expect(r.usage?.completion_tokens).toBeGreaterThan(0);
  });

  it('answers 20 random chats with 200 and valid text (the UTF-8 guard works)', async () => {
    let state = 12345;
    const rand = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const words = [
      'code',
      'file',
      'function',
      'return',
      'ünïcödé',
      '日本語',
      'emoji 🚀',
      'tab\tnew\nline',
      'json {"a":1}',
      'x',
    ];
    const results: Array<{ status: number; content: string }> = [];
    for (let i = 0; i < 20; i++) {
      const prompt = Array.from(
        { length: 3 + Math.floor(rand() * 20) },
        () => words[Math.floor(rand() * words.length)],
      ).join(' ');
      const res = await fetch(`${server.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          model: 'devstral-small-2',
          messages: [
            ...(i % 2 ? [{ role: 'system', content: 'You are a coding assistant.' }] : []),
            { role: 'user', content: prompt },
          ],
          max_tokens: 16 + Math.floor(rand() * 48),
          temperature: 0.2 + rand() * 1.3,
          seed: i,
        }),
      });
      const body = (await res.json()) as { choices?: Array<{ message: { content: string } }> };
      results.push({ status: res.status, content: body.choices?.[0]?.message.content ?? '' });
    }
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    for (const r of results) {
      expect(r.content).not.toContain('\uFFFD');
      expect(r.content).not.toMatch(/\[(INST|\/INST|TOOL_CALLS|THINK)\]|<\/?s>/);
    }
  }, 180_000);

  it('streams and ends with data: [DONE]', async () => {
    const res = await fetch(`${server.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        model: 'devstral-small-2',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 8,
        stream: true,
      }),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
  });

  it('uses the embedded stock template (it rejects two consecutive user messages)', async () => {
    const res = await fetch(`${server.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        model: 'devstral-small-2',
        messages: [
          { role: 'user', content: 'one' },
          { role: 'user', content: 'two' },
        ],
        max_tokens: 4,
      }),
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(await res.text()).toContain('conversation roles must alternate');
  });
});
