// 4. Faults: the engine SIGKILLed mid-stream, a broken render at reload, a full disk during a model
// fetch, a corrupted model at boot. Real processes throughout (nginx, llama-server + tiny GGUF, wget,
// a tmpfs); the only test doubles are named as such.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { appliancePaths } from '@slm-copilot/context-schema';
import { configure } from '@slm-copilot/lifecycle';
import {
  buildManifest,
  fetchModel,
  sampleOffsets,
  verifyFull,
  verifySampled,
  SAMPLE_BYTES,
} from '@slm-copilot/model-fetch';
import { ensureSelfSigned, installGateway } from '@slm-copilot/nginx-config';
import { httpsGet, trustingFetch } from '@slm-copilot/nginx-config/test-support/client';
import { mutation } from '@slm-copilot/nginx-config/test-support/mutate';
import { removeTempRoots, startGateway, tempRoot, type Gateway } from '@slm-copilot/nginx-config/test-support/nginx';
import { ggufHeader } from '@slm-copilot/model-fetch/test-support';
import { ExitCode, freePort, sha256File, TaskError } from '@slm-copilot/task-kit';
import {
  ensureLlamaBuild,
  ensureTinyModel,
  startLlamaServer,
  startMirror,
  type GgufModel,
  type LlamaBuild,
  type LlamaServer,
} from '@slm-copilot/testbed';
import OpenAI from 'openai';
import { $ } from 'zx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliance } from './test-support/appliance.js';
import { captureLog, quietLog } from '@slm-copilot/task-kit/test-support/log';

const HOST = 'copilot.example.test';
const KEY = 'sk-hardening-faults-0123456789';
const MODEL_ID = 'devstral-small-2';

let build: LlamaBuild;
let model: GgufModel;

beforeAll(async () => {
  build = await ensureLlamaBuild({ variant: 'dispatch' });
  model = await ensureTinyModel({ llama: build });
}, 40 * 60_000);

afterAll(() => removeTempRoots());

describe('(a) the engine SIGKILLed mid-stream, then restarted', () => {
  let gw: Gateway;
  let ca: string;
  let enginePort: number;
  let engine: LlamaServer | undefined;
  const startEngine = async () => {
    engine = await startLlamaServer({
      binary: build.llamaServer,
      port: enginePort,
      args: ['-m', model.path, '--jinja', '-c', '8192', '--alias', MODEL_ID, '-t', '1', '--parallel', '1'],
    });
  };
  const readyz = () =>
    httpsGet(`https://${HOST}:${gw.httpsPort}/readyz`, { ca, resolveTo: '127.0.0.1', timeoutMs: 10_000 }).then(
      (r) => r.status,
    );

  beforeAll(async () => {
    const root = await tempRoot('faults-kill');
    const paths = appliancePaths(root);
    const ss = await ensureSelfSigned({ paths, hostname: HOST, ipAddresses: [], log: quietLog });
    ca = await readFile(paths.tls.caCert, 'utf8');
    enginePort = await freePort();
    gw = await startGateway({
      root,
      tls: ss.served,
      trustFile: paths.tls.caCert,
      enginePort,
      keys: { main: KEY, extra: [] },
      env: {
        ONEAPP_COPILOT_PASSWORD: KEY,
        ONEAPP_COPILOT_ENGINE: 'llama-server',
        ONEAPP_COPILOT_HOSTNAME: HOST,
        ONEAPP_COPILOT_TLS_MODE: 'self-signed',
      },
    });
    await startEngine();
  }, 120_000);

  afterAll(async () => {
    await engine?.stop();
    await gw?.stop();
  }, 30_000);

  it('the openai client gets an error (never a stream that looks complete); /readyz 503 → 200 on restart', async () => {
    const client = new OpenAI({
      baseURL: `https://${HOST}:${gw.httpsPort}/v1`,
      apiKey: KEY,
      maxRetries: 0,
      timeout: 60_000,
      fetch: trustingFetch({ ca, resolveTo: '127.0.0.1' }),
    });
    expect(await readyz()).toBe(200);
    const stream = await client.chat.completions.create({
      model: MODEL_ID,
      messages: [{ role: 'user', content: 'Write a very long story.' }],
      max_tokens: 6000,
      stream: true,
    });
    let chunks = 0;
    let finishReason: string | null = null;
    let error: unknown = null;
    const killedPid = engine!.pid;
    let killedAt = 0;
    try {
      for await (const chunk of stream) {
        chunks++;
        finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
        if (chunks === 10) {
          process.kill(killedPid, 'SIGKILL');
          killedAt = performance.now();
        }
      }
    } catch (e) {
      error = e;
    }
    console.log(
      `killed llama-server (pid ${killedPid}) after ${chunks >= 10 ? 10 : chunks} chunks; ` +
        `the client saw ${chunks} chunks, finish_reason ${finishReason}, error: ${String(error)}`,
    );
    expect(chunks).toBeGreaterThanOrEqual(10);
    expect(error, 'the stream must fail, not end quietly').not.toBeNull();
    expect(finishReason).toBeNull();

    // Down: readiness says so, and the API answers the JSON 502 (never a hang).
    expect(await readyz()).toBe(503);
    const api = await httpsGet(`https://${HOST}:${gw.httpsPort}/v1/models`, {
      ca,
      resolveTo: '127.0.0.1',
      headers: { Authorization: `Bearer ${KEY}` },
    });
    expect(api.status).toBe(502);
    expect(JSON.parse(api.body).error.code).toBe('engine_unavailable');

    // Restart and watch /readyz through nginx until it is 200 again.
    const seen: number[] = [];
    const t0 = performance.now();
    const restart = startEngine();
    let recoveredMs = -1;
    while (performance.now() - t0 < 120_000) {
      const s = await readyz().catch(() => 0);
      if (seen.at(-1) !== s) seen.push(s);
      if (s === 200) {
        recoveredMs = performance.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await restart;
    console.log(
      `recovery: /readyz ${seen.join(' → ')}; ${(recoveredMs / 1000).toFixed(2)} s from the restart ` +
        `(${((performance.now() - killedAt) / 1000).toFixed(1)} s since the kill)`,
    );
    expect(seen[0]).toBe(503);
    expect(seen.at(-1)).toBe(200);
    expect(recoveredMs).toBeGreaterThan(0);

    // And a new stream completes normally.
    const again = await client.chat.completions.create({
      model: MODEL_ID,
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 16,
      stream: true,
    });
    let last: string | null = null;
    for await (const c of again) last = c.choices[0]?.finish_reason ?? last;
    expect(last).toBe('length');
  }, 240_000);

  it('the raw SSE stream of a killed engine never carries [DONE] and is cut at the transport level', async () => {
    // The openai client above could hide how the stream ends: read the bytes ourselves (HTTP/1.1, chunked).
    const { request } = await import('node:https');
    const { trustAgent } = await import('@slm-copilot/nginx-config/test-support/client');
    const body = JSON.stringify({
      model: MODEL_ID,
      messages: [{ role: 'user', content: 'Write a very long story.' }],
      max_tokens: 6000,
      stream: true,
    });
    const result = await new Promise<{ text: string; error: string | null; complete: boolean }>((resolve) => {
      let text = '';
      let killed = false;
      const req = request(
        `https://${HOST}:${gw.httpsPort}/v1/chat/completions`,
        {
          method: 'POST',
          agent: trustAgent({ ca, resolveTo: '127.0.0.1' }),
          headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
        },
        (res) => {
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            text += c;
            if (!killed && (text.match(/^data: /gm) ?? []).length >= 10) {
              killed = true;
              process.kill(engine!.pid, 'SIGKILL');
            }
          });
          res.on('end', () => resolve({ text, error: null, complete: res.complete }));
          res.on('error', (e) => resolve({ text, error: e.message, complete: res.complete }));
          res.on('aborted', () => resolve({ text, error: 'aborted', complete: res.complete }));
        },
      );
      req.on('error', (e) => resolve({ text, error: e.message, complete: false }));
      req.end(body);
    });
    console.log(
      `raw stream: ${(result.text.match(/^data: /gm) ?? []).length} events, ` +
        `complete=${result.complete}, error=${result.error}`,
    );
    expect(result.text).not.toContain('[DONE]');
    expect(result.complete).toBe(false);
    await startEngine();
    expect(await readyz()).toBe(200);
  }, 120_000);

  it('(b) a reload with a broken render is refused by installGateway; the old configuration serves 200', async () => {
    const site = gw.files.find((f) => f.path === gw.paths.nginx.siteFile)!;
    const before = await readFile(site.path, 'utf8');
    const broken = mutation('proxy.conf', 'proxy_buffering off;', 'proxy_buffering sideways;')(gw.files);
    const error = await installGateway(broken, {
      testConfigCommand: gw.testCommand,
      reload: gw.reloadCommand,
      log: quietLog,
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TaskError);
    expect((error as TaskError).exitCode).toBe(ExitCode.invalidConfig);
    expect((error as Error).message).toMatch(
      /nginx -t refused.*previous configuration was restored and keeps serving/s,
    );
    expect((error as Error).message).toMatch(/sideways/);
    // every file back byte for byte, and the running nginx still serves
    for (const f of gw.files) expect(await readFile(f.path, 'utf8'), f.path).toBe(f.text);
    expect(await readFile(site.path, 'utf8')).toBe(before);
    const r = await httpsGet(`https://${HOST}:${gw.httpsPort}/v1/models`, {
      ca,
      resolveTo: '127.0.0.1',
      headers: { Authorization: `Bearer ${KEY}` },
    });
    expect(r.status).toBe(200);
    expect(await readyz()).toBe(200);
    // Control: a good render is installed and reloaded (so the refusal above was not a no-op path).
    const extra = 'sk-hardening-new-extra-0123456789';
    const xKeyMap = 'map $http_x_api_key $slm_x_api_key {\n    default "";\n';
    const good = mutation('api-keys.conf', xKeyMap, `${xKeyMap}    "~^${extra}$" extra-9;\n`)(gw.files);
    const ok = await installGateway(good, {
      testConfigCommand: gw.testCommand,
      reload: gw.reloadCommand,
      log: quietLog,
    });
    expect(ok.reloaded).toBe(true);
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      await new Promise((res) => setTimeout(res, 100)); // the reload is asynchronous (new workers)
      status = (
        await httpsGet(`https://${HOST}:${gw.httpsPort}/v1/models`, {
          ca,
          resolveTo: '127.0.0.1',
          headers: { 'x-api-key': extra },
        })
      ).status;
    }
    expect(status).toBe(200);
  }, 60_000);
});

describe('(c) disk full during a model fetch', () => {
  let mnt: string;
  let mounted: string | null = null;
  let mirror: Awaited<ReturnType<typeof startMirror>>;
  let sha256: string;
  const SIZE = 8 * 1024 * 1024;

  beforeAll(async () => {
    mnt = await tempRoot('faults-tmpfs');
    const src = await tempRoot('faults-mirror');
    // a .gguf destination must parse as GGUF before it is installed: a real header, then random bytes
    const header = ggufHeader();
    const data = Buffer.concat([header, randomBytes(SIZE - header.length)]);
    sha256 = createHash('sha256').update(data).digest('hex');
    await writeFile(path.join(src, 'model.gguf'), data);
    mirror = await startMirror({ root: src });
    if (process.getuid?.() !== 0) mounted = 'not root: cannot mount a tmpfs';
    else {
      const r = await $({ nothrow: true, quiet: true })`mount -t tmpfs -o size=4m slm-hardening-full ${mnt}`;
      if (r.exitCode !== 0) mounted = `mount -t tmpfs refused: ${r.stderr.trim()}`;
    }
  }, 60_000);

  afterAll(async () => {
    await mirror?.stop();
    if (mounted === null) await $({ nothrow: true, quiet: true })`umount ${mnt}`;
  });

  it('a 4 MiB tmpfs: refused up front when the size is known, naming the path, needed and free bytes', async (ctx) => {
    if (mounted) ctx.skip(); // e.g. in an unprivileged container
    const dest = path.join(mnt, 'models', 'model.gguf');
    const e = await fetchModel({
      urls: [`${mirror.baseUrl}/model.gguf`],
      sha256,
      size: SIZE,
      dest,
      log: quietLog,
      progress: 'none',
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TaskError);
    expect((e as Error).message).toMatch(
      new RegExp(`not enough disk space in ${path.dirname(dest)} for model.gguf: need \\d+ bytes .* only \\d+ bytes`),
    );
    expect(existsSync(dest)).toBe(false);
    expect(mirror.requests.filter((r) => r.method === 'GET')).toEqual([]);
  });

  it('disk full mid-download: "disk full" naming the partial file; nothing at dest; resumes with room', async (ctx) => {
    if (mounted) ctx.skip();
    const dest = path.join(mnt, 'models2', 'model.gguf');
    const { log, lines } = captureLog();
    // size unknown and no margin: the up-front check cannot refuse, so the disk fills during the transfer
    const e = await fetchModel({
      urls: [`${mirror.baseUrl}/model.gguf`],
      sha256,
      dest,
      marginBytes: 0,
      log,
      progress: 'none',
      tries: 1,
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TaskError);
    expect((e as TaskError).exitCode).toBe(ExitCode.environment);
    expect((e as Error).message).toContain(`disk full (No space left on device) while writing ${dest}.partial`);
    console.log(`disk full: ${(e as Error).message}`);
    expect(existsSync(dest), 'nothing half-installed at dest').toBe(false);
    expect(existsSync(`${dest}.manifest.json`)).toBe(false);
    const partial = (await stat(`${dest}.partial`)).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(SIZE);
    expect(lines.join('\n')).not.toContain('installed');
    // Room again (a bigger tmpfs, same mount): the next run continues the partial file and installs it verified.
    await $`mount -o remount,size=32m ${mnt}`;
    const r = await fetchModel({
      urls: [`${mirror.baseUrl}/model.gguf`],
      sha256,
      dest,
      marginBytes: 0,
      log: quietLog,
      progress: 'none',
    });
    expect(r.sha256).toBe(sha256);
    expect(await sha256File(dest)).toBe(sha256);
    expect(mirror.requests.some((q) => q.range !== null)).toBe(true);
  }, 60_000);
});

describe('(d) a corrupted model is detected at boot, before the engine starts', () => {
  it('configure refuses a model with a flipped byte in a sampled region, and renders no engine', async () => {
    const a = await appliance('faults-corrupt', { path: model.path, sha256: model.sha256 }, { copyModel: true });
    const size = (await stat(a.modelFile)).size;
    const offset = sampleOffsets(size)[5]! + 1234;
    const h = await open(a.modelFile, 'r+');
    const b = Buffer.alloc(1);
    await h.read(b, 0, 1, offset);
    b[0] = b[0]! ^ 0xff;
    await h.write(b, 0, 1, offset);
    await h.close();
    const e = await configure(
      a.options({ ONEAPP_COPILOT_ENGINE: 'llama-server', ONEAPP_COPILOT_HTTPS_PORT: '8443' }),
    ).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TaskError);
    expect((e as TaskError).exitCode).toBe(ExitCode.integrity);
    expect((e as Error).message).toMatch(/the model file .*tiny\.gguf is damaged: sampled-hash/);
    const paths = appliancePaths(a.root);
    expect(existsSync(path.join(paths.systemdDir, 'slm-copilot-engine.service'))).toBe(false);
    expect(a.services.calls).toEqual([]);
  }, 60_000);

  it('verifySampled catches a flipped byte in a sample and a truncation (1 GiB); timing vs full sha256', async () => {
    const dir = await tempRoot('faults-big');
    const file = path.join(dir, 'big.gguf');
    const SIZE = 1024 * 1024 * 1024;
    const hash = createHash('sha256');
    const h = await open(file, 'w');
    const chunk = 64 * 1024 * 1024;
    const tWrite = performance.now();
    for (let off = 0; off < SIZE; off += chunk) {
      const buf = randomBytes(chunk);
      hash.update(buf);
      await h.write(buf, 0, chunk, off);
    }
    await h.close();
    const sha = hash.digest('hex');
    const writeS = (performance.now() - tWrite) / 1000;
    const manifest = await buildManifest(file, { sha256: sha });
    const dropCache = () => $({ nothrow: true, quiet: true })`dd if=${file} iflag=nocache count=0 status=none`;
    const time = async <T>(fn: () => Promise<T>) => {
      const t0 = performance.now();
      const r = await fn();
      return { r, s: (performance.now() - t0) / 1000 };
    };
    await dropCache();
    const sampledCold = await time(() => verifySampled(file, manifest));
    const sampledWarm = await time(() => verifySampled(file, manifest));
    await dropCache();
    const fullCold = await time(() => verifyFull(file, manifest));
    expect(sampledCold.r.ok && sampledWarm.r.ok && fullCold.r.ok).toBe(true);

    // A flipped byte inside the 9th sample: caught by the sampled check.
    const offsets = sampleOffsets(SIZE);
    const flipAt = async (at: number) => {
      const f = await open(file, 'r+');
      const b = Buffer.alloc(1);
      await f.read(b, 0, 1, at);
      b[0] = b[0]! ^ 0x01;
      await f.write(b, 0, 1, at);
      await f.close();
    };
    await flipAt(offsets[8]! + SAMPLE_BYTES / 2);
    const inSample = await verifySampled(file, manifest);
    expect(inSample).toMatchObject({ ok: false, reason: 'sampled-hash' });
    await flipAt(offsets[8]! + SAMPLE_BYTES / 2); // back
    // Outside every sample: the documented limit of the sampled check; the full check catches it.
    const gap = offsets[3]! + SAMPLE_BYTES + 4096;
    await flipAt(gap);
    expect((await verifySampled(file, manifest)).ok).toBe(true);
    expect(await verifyFull(file, manifest)).toMatchObject({ ok: false, reason: 'sha256' });
    await flipAt(gap);
    // Truncated (a download cut short, a full disk): caught by the size check at once.
    await truncate(file, SIZE - 1);
    const cut = await verifySampled(file, manifest);
    expect(cut).toMatchObject({ ok: false, reason: 'size' });
    console.log(
      `1 GiB model file (written in ${writeS.toFixed(1)} s): ` +
        `verifySampled ${sampledCold.s.toFixed(2)} s cold / ${sampledWarm.s.toFixed(3)} s warm ` +
        `vs full sha256 ${fullCold.s.toFixed(2)} s cold; ` +
        `flipped byte in a sample → ${inSample.ok ? 'missed' : inSample.reason}; ` +
        `truncated → ${cut.ok ? 'missed' : cut.reason} (${cut.ok ? 0 : cut.ms.toFixed(1)} ms)`,
    );
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
  }, 180_000);
});
