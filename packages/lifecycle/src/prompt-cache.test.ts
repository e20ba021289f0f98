// The prompt cache across restarts on the REAL engine (llama.cpp's llama-server built from source by the test
// bed, the tiny 'agent' GGUF with a trained context of 131072): configure's decision (prepareSlotCache), the
// rendered units, and `slm-copilot-service cache save|restore` run as the prompt-cache unit runs them (the bin,
// from source). systemd itself does not run here: the test starts the engine with the rendered arguments and
// creates the slot directory as StateDirectory= would. Speed is printed, never asserted.
import { mkdir, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { appliancePaths, parseContext, type AppliancePaths } from '@slm-copilot/context-schema';
import { loadChatTemplate, modelFactsFromManifest, renderEngine } from '@slm-copilot/localai-install';
import { buildManifest, type ModelManifest } from '@slm-copilot/model-fetch';
import { removeTempRoots, tempRoot } from '@slm-copilot/nginx-config/test-support/nginx';
import { freePort, gatherHostFacts, applyFileSet, type HostFacts } from '@slm-copilot/task-kit';
import { packageCli } from '@slm-copilot/task-kit/test-support/cli';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';
import { ensureLlamaBuild, ensureTinyModel, startLlamaServer, type LlamaServer } from '@slm-copilot/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { prepareSlotCache, slotCacheStateFile } from './prompt-cache/prepare.js';
import { readJson } from './state.js';

const SETUP_TIMEOUT = 20 * 60_000; // a cold llama.cpp build on 2 cores
const KEYS = ['sk-test-main-key-0123456789abcdef'];
/** The bar for a real restore: the next turn processes less than 10 % of its prompt. */
const RESTORED_SHARE = 0.1;

const run = packageCli(import.meta.url);
let binary: string;
let paths: AppliancePaths;
let manifest: ModelManifest;
let host: HostFacts;
let template: string;
const servers: LlamaServer[] = [];

beforeAll(async () => {
  const build = await ensureLlamaBuild({ variant: 'dispatch' });
  binary = build.llamaServer;
  const model = await ensureTinyModel({ variant: 'agent' });
  const base = appliancePaths(await tempRoot('prompt-cache'));
  paths = { ...base, engine: { ...base.engine, port: await freePort() } };
  await mkdir(paths.modelsDir, { recursive: true });
  await mkdir(paths.stateDir, { recursive: true, mode: 0o700 });
  await symlink(model.path, path.join(paths.modelsDir, path.basename(model.path)));
  manifest = await buildManifest(model.path);
  host = await gatherHostFacts();
  template = await loadChatTemplate();
}, SETUP_TIMEOUT);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  removeTempRoots();
});

/** A unit line's words after `Key=`. */
function unitWords(unit: string, key: string): string[] {
  const line = unit.split('\n').find((l) => l.startsWith(`${key}=`));
  if (!line) throw new Error(`no ${key} in unit:\n${unit}`);
  return line.slice(key.length + 1).split(' ');
}

/** configure's part for this template and keys: decision, render, install; what systemd would run. */
async function configureEngine(chatTemplate: string) {
  const config = parseContext({
    ONEAPP_COPILOT_ENGINE: 'llama-server',
    ONEAPP_COPILOT_THREADS: '2',
    ONEAPP_COPILOT_CONTEXT_SIZE: '16384',
  });
  const inputs = { config, model: modelFactsFromManifest(manifest), host, paths, chatTemplate };
  const id = await prepareSlotCache(inputs, { modelSha256: manifest.sha256, apiKeys: KEYS }, quietLog);
  const r = renderEngine({ ...inputs, slotCacheId: id });
  await applyFileSet('/', r.files);
  const text = (name: string) => r.files.find((f) => f.path.endsWith(`/${name}`))!.text;
  const engine = unitWords(text('slm-copilot-engine.service'), 'ExecStart');
  // the test bed passes --host/--port itself
  expect(engine.slice(1, 5)).toEqual(['--host', '127.0.0.1', '--port', String(paths.engine.port)]);
  const args = engine.slice(5);
  const dir = args[args.indexOf('--slot-save-path') + 1]!;
  // what systemd runs before each start: the engine refuses a --slot-save-path that does not exist
  const pre = unitWords(text('slm-copilot-engine.service'), 'ExecStartPre');
  expect(pre).toEqual(['/bin/mkdir', '-p', '-m', '0700', dir]);
  const cacheUnit = text('slm-copilot-engine-cache.service');
  // `node <lifecycle bundle> cache …`: the same arguments, given to the bin from source
  const command = (key: string) => unitWords(cacheUnit, key).slice(2);
  return { id: id!, dir, args, pre, restore: command('ExecStart'), save: command('ExecStop') };
}

/** The engine unit's start: ExecStartPre, then ExecStart (the test bed adds --host/--port). */
async function start(unit: { pre: string[]; args: string[] }): Promise<LlamaServer> {
  await $`${unit.pre}`;
  const server = await startLlamaServer({ binary, args: unit.args, host: '127.0.0.1', port: paths.engine.port });
  servers.push(server);
  return server;
}

/** A long system prompt of plain words (~3.3 tokens a word in the test model's vocabulary). */
function systemPrompt(words: number): string {
  const vocabulary = ['const', 'value', 'return', 'index', 'buffer', 'stream', 'module', 'export', 'array', 'object'];
  return Array.from({ length: words }, (_, i) => vocabulary[(i * 7 + (i >> 3)) % vocabulary.length]).join(' ');
}

interface Timings {
  prompt_n: number;
  prompt_ms: number;
  cache_n: number;
}

async function chat(server: LlamaServer, messages: unknown[]) {
  const r = await fetch(`${server.baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages, max_tokens: 4, temperature: 0 }),
  });
  const body = (await r.json()) as {
    timings: Timings;
    usage: { prompt_tokens: number };
    choices: { message: { content: string } }[];
  };
  expect(r.status, JSON.stringify(body)).toBe(200);
  return { ...body.timings, tokens: body.usage.prompt_tokens, reply: body.choices[0]!.message.content };
}

const firstTurn = [
  { role: 'system', content: systemPrompt(3000) },
  { role: 'user', content: 'What does main.ts do?' },
];
const secondTurn = (reply: string) => [
  ...firstTurn,
  { role: 'assistant', content: reply },
  { role: 'user', content: 'And util.ts?' },
];

describe('the prompt cache across an engine restart (real llama-server)', () => {
  let saved: Awaited<ReturnType<typeof configureEngine>>;
  let reply = '';

  it('save → restart → restore: the next turn reuses the restored prompt; the file is 0600', async () => {
    saved = await configureEngine(template);
    const first = await start(saved);
    const cold = await chat(first, firstTurn);
    reply = cold.reply;
    expect(cold.prompt_n).toBeGreaterThan(8000);
    const save = await run(saved.save);
    expect(save.exitCode, save.stderr).toBe(0);
    expect(await readdir(saved.dir)).toEqual(['slot0.bin']);
    const file = await stat(path.join(saved.dir, 'slot0.bin'));
    expect(file.mode & 0o777).toBe(0o600);
    expect((await stat(saved.dir)).mode & 0o777).toBe(0o700);
    await first.stop();

    const second = await start(saved);
    const t0 = performance.now();
    const restore = await run(saved.restore);
    const restoreMs = performance.now() - t0;
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(restore.stdout + restore.stderr).toMatch(/slot 0: restored \d+ tokens/);
    const warm = await chat(second, secondTurn(reply));
    expect(warm.prompt_n).toBeLessThan(RESTORED_SHARE * warm.tokens);
    expect(warm.cache_n).toBeGreaterThanOrEqual(cold.tokens);

    // the same turn on an engine that restored nothing processes it all (what the restore saves)
    await second.stop();
    const third = await start(saved);
    const none = await chat(third, secondTurn(reply));
    expect(none.prompt_n).toBeGreaterThan((1 - RESTORED_SHARE) * none.tokens);
    await third.stop();
    console.log(
      `prompt cache across a restart (tiny model, ${warm.tokens} tokens): restored turn prompt_n ` +
        `${warm.prompt_n} in ${warm.prompt_ms.toFixed(0)} ms; cold prompt_n ${none.prompt_n} in ` +
        `${none.prompt_ms.toFixed(0)} ms; file ${file.size} B; restore command ${restoreMs.toFixed(0)} ms ` +
        '(with Node start-up)',
    );
  }, 300_000);

  it("another chat template: a new id, the old cache deleted, the old engine's last save lands nowhere", async () => {
    expect(saved, 'the first test saved a slot').toBeDefined();
    // the engine of the old configuration, with its slot in use
    const old = await start(saved);
    expect((await run(saved.restore)).exitCode).toBe(0);
    const served = await chat(old, secondTurn(reply));
    expect(served.prompt_n).toBeLessThan(RESTORED_SHARE * served.tokens);

    const changed = await configureEngine(`${template}\n{#- another template -#}\n`);
    expect(changed.id).not.toBe(saved.id);
    expect((await readJson<{ id: string }>(slotCacheStateFile(paths)))?.id).toBe(changed.id);
    // configure deleted the old directory: the file is gone, not only unreachable
    expect(await readdir(path.dirname(changed.dir))).toEqual([]);
    // the restart: systemd runs the NEW unit's ExecStop against the OLD engine. Even with the new directory
    // there, the old engine writes into its own (deleted) one: the save fails, nothing reaches the new id.
    await $`${changed.pre}`;
    const save = await run(changed.save);
    expect(save.exitCode, save.stderr).toBe(0);
    expect(save.stdout + save.stderr).toMatch(/slot 0: failed/);
    expect(await readdir(changed.dir)).toEqual([]);
    await old.stop();

    const server = await start(changed);
    const restore = await run(changed.restore);
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(restore.stdout + restore.stderr).toMatch(/nothing to restore/);
    const turn = await chat(server, secondTurn(reply));
    expect(turn.prompt_n).toBeGreaterThan((1 - RESTORED_SHARE) * turn.tokens);
    await server.stop();
  }, 300_000);

  it('a file the engine refuses is deleted; a save that might not fit on the disk is skipped', async () => {
    const c = await configureEngine(template);
    await $`${c.pre}`;
    await writeFile(path.join(c.dir, 'slot0.bin'), 'not a slot file');
    const server = await start(c);
    const restore = await run(c.restore);
    expect(restore.exitCode, restore.stderr).toBe(0);
    expect(restore.stdout + restore.stderr).toMatch(/slot 0: failed: .*\(file deleted\)/);
    expect(await readdir(c.dir)).toEqual([]);
    await chat(server, [{ role: 'user', content: 'Hi' }]);
    // a bound larger than any disk: skipped, nothing written
    const save = await run(c.save.map((a, i) => (c.save[i - 1] === '--max-file-bytes' ? String(2 ** 50) : a)));
    expect(save.exitCode, save.stderr).toBe(0);
    expect(save.stdout + save.stderr).toMatch(/slot 0: skipped: \d+ bytes free/);
    expect(await readdir(c.dir)).toEqual([]);
    await server.stop();
  }, 120_000);

  it('a LocalAI render leaves the decision to the fallback: falling back at each boot keeps the id', async () => {
    const facts = { modelSha256: manifest.sha256, apiKeys: KEYS };
    const inputsOf = (env: Record<string, string>) => ({
      config: parseContext(env),
      model: modelFactsFromManifest(manifest),
      host,
      paths,
      chatTemplate: template,
    });
    const first = await prepareSlotCache(inputsOf({ ONEAPP_COPILOT_ENGINE: 'llama-server' }), facts, quietLog);
    expect(first).toMatch(/^[0-9a-f]{32}$/);
    // configure with the default engine (LocalAI), then bootstrap's fallback to llama-server, as at every boot
    expect(await prepareSlotCache(inputsOf({}), facts, quietLog)).toBeNull();
    expect(await readJson(slotCacheStateFile(paths))).toMatchObject({ id: first });
    expect(await prepareSlotCache(inputsOf({ ONEAPP_COPILOT_ENGINE: 'llama-server' }), facts, quietLog)).toBe(first);
  });

  it('persistence off: the saved caches and the decision are deleted', async () => {
    const config = parseContext({ ONEAPP_COPILOT_ENGINE: 'llama-server', ONEAPP_COPILOT_PROMPT_CACHE_PERSIST: 'NO' });
    const inputs = { config, model: modelFactsFromManifest(manifest), host, paths, chatTemplate: template };
    const id = await prepareSlotCache(inputs, { modelSha256: manifest.sha256, apiKeys: KEYS }, quietLog);
    expect(id).toBeNull();
    expect(await readdir(path.join(paths.prefix, 'var/lib/slm-copilot-engine/slot-cache'))).toEqual([]);
    expect(await readJson(slotCacheStateFile(paths))).toBeNull();
  });
});
