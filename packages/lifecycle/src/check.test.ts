// `slm-copilot check` against the REAL gateway (rendered nginx, TLS with the per-VM CA, API keys) in front of
// the REAL engine (llama.cpp's llama-server with the tiny test GGUF), run as a user runs it (the bin, from
// source). Each mutation breaks one thing the check must catch. Fake: the report's [Engine] fallback (rendered
// by the real report-writer from a test input: no LocalAI binary exists here to fail over from).
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { appliancePaths, type AppliancePaths } from '@slm-copilot/context-schema';
import { ensureSelfSigned } from '@slm-copilot/nginx-config';
import {
  ensureLlamaBuild,
  ensureTinyModel,
  startLlamaServer,
  type LlamaServer,
} from '@slm-copilot/nginx-config/test-support/engine';
import { MUTATIONS } from '@slm-copilot/nginx-config/test-support/mutate';
import {
  freePort,
  removeTempRoots,
  startGateway,
  tempRoot,
  type Gateway,
} from '@slm-copilot/nginx-config/test-support/nginx';
import { renderReport } from '@slm-copilot/report-writer';
import { nonEmptyLines, packageCli } from '@slm-copilot/task-kit/test-support/cli';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { speedFrom, type CheckReport } from './check/run.js';

const BUILD_TIMEOUT = 40 * 60_000;
const HOST = 'copilot.example.test';
// startGateway's default main key (testConfig)
const MAIN = 'sk-test-main-key-0123456789abcdef';
const IDS = ['tls', 'readyz', 'auth', 'chat', 'tool_call', 'speed', 'engine'];
const ENV = {
  ONEAPP_COPILOT_ENGINE: 'llama-server',
  ONEAPP_COPILOT_HOSTNAME: HOST,
  ONEAPP_COPILOT_TLS_MODE: 'self-signed',
};

const run = packageCli(import.meta.url, { SLM_COPILOT_API_KEY: '' });
let gw: Gateway;
let paths: AppliancePaths;
let engine: LlamaServer | undefined;
let served: { certificate: string; key: string };

/** The check from a workstation against `port`, the test name resolved to loopback. */
const fromOutside = (port: number, extra: string[] = [], env: NodeJS.ProcessEnv = { SLM_COPILOT_API_KEY: MAIN }) =>
  run(['check', '--url', `https://${HOST}:${port}`, '--address', '127.0.0.1', '--ca', paths.tls.caCert, ...extra], env);
const statusOf = (out: string, title: string) =>
  nonEmptyLines(out)
    .find((l) => l.slice(6).startsWith(`${title} `))
    ?.slice(0, 4)
    .trim();
const noKey = (...texts: string[]) => {
  for (const t of texts) expect(t).not.toContain(MAIN);
};

beforeAll(async () => {
  const build = await ensureLlamaBuild();
  const model = await ensureTinyModel({ llama: build });
  const root = await tempRoot('check');
  paths = appliancePaths(root);
  served = (await ensureSelfSigned({ paths, hostname: HOST, ipAddresses: [], log: quietLog })).served;
  const enginePort = await freePort();
  engine = await startLlamaServer({
    binary: build.llamaServer,
    port: enginePort,
    args: ['-m', model.path, '--jinja', '-c', '4096', '--alias', 'devstral-small-2', '-t', '2'],
  });
  gw = await startGateway({ root, tls: served, trustFile: paths.tls.caCert, enginePort, env: ENV });
}, BUILD_TIMEOUT);

afterAll(async () => {
  await engine?.stop();
  await gw?.stop();
  removeTempRoots();
}, 30_000);

describe('speed without engine timings', () => {
  it('is timed from the stream: generation over the span between content chunks, prompt over the first', () => {
    const r = speedFrom({
      text: 'abc',
      usage: { prompt_tokens: 50, completion_tokens: 11 },
      firstContentMs: 500,
      lastContentMs: 2500,
    });
    expect(r.status).toBe('info');
    expect(r.data).toEqual({ source: 'measured from the stream', generation: 5, prompt: 100 });
    expect(r.detail).toMatch(/measured from the stream$/);
    expect(speedFrom({ text: 'a', usage: { prompt_tokens: 5, completion_tokens: 1 }, firstContentMs: 1 }).status).toBe(
      'skip',
    );
  });
});

describe('slm-copilot check against the real gateway and llama-server', () => {
  it('from a workstation: every required check passes, one line each, then the verdict; exit 0', async () => {
    const r = await fromOutside(gw.httpsPort);
    expect(r.stderr).toBe('');
    expect(r.exitCode, r.stdout).toBe(0);
    const lines = nonEmptyLines(r.stdout);
    expect(lines).toHaveLength(1 + IDS.length + 1);
    expect(lines[0]).toBe(
      `checking https://${HOST}:${gw.httpsPort} via 127.0.0.1 (key from SLM_COPILOT_API_KEY, CA: ${paths.tls.caCert})`,
    );
    for (const title of ['TLS', 'readiness', 'auth', 'chat stream'])
      expect(statusOf(r.stdout, title), title).toBe('PASS');
    expect(r.stdout).toMatch(/^PASS {2}auth {9}a request without a key: HTTP 401: /m);
    expect(r.stdout).toMatch(/^PASS {2}chat stream {2}devstral-small-2 streamed ".+"; usage chunk: prompt \d+, com/m);
    // the tiny model writes text; a tool call would be reported as PASS, never required
    expect(r.stdout).toMatch(
      /^(INFO {2}tool call {4}no tool call \(the model chose text\)|PASS {2}tool call {4}tool_calls: )/m,
    );
    expect(r.stdout).toMatch(/^INFO {2}speed {8}generation [\d.]+ tok\/s .* from the engine's timings$/m);
    expect(r.stdout).toMatch(/^INFO {2}engine {7}not known from outside$/m);
    expect(lines.at(-1)).toBe('verdict: PASS (4 of 4 required checks passed)');
    noKey(r.stdout, r.stderr);
  }, 120_000);

  it('--json prints one document with every check', async () => {
    const r = await fromOutside(gw.httpsPort, ['--json'], { SLM_COPILOT_API_KEY: '' });
    expect(r.exitCode).toBe(2); // no key at all: a usage error, nothing checked
    expect(nonEmptyLines(r.stderr)).toEqual([
      'slm-copilot check: no API key: give --key KEY or set SLM_COPILOT_API_KEY (see slm-copilot check --help)',
    ]);
    const ok = await fromOutside(gw.httpsPort, ['--json', '--key', MAIN], {});
    expect(ok.exitCode).toBe(0);
    const report = JSON.parse(ok.stdout) as CheckReport;
    expect(report.verdict).toBe('pass');
    expect(report.checks.map((c) => c.id)).toEqual(IDS);
    expect(report.checks.filter((c) => c.required).map((c) => [c.id, c.status])).toEqual(
      ['tls', 'readyz', 'auth', 'chat'].map((id) => [id, 'pass']),
    );
    const speed = report.checks.find((c) => c.id === 'speed')!.data as Record<string, unknown>;
    expect(speed.source).toBe('engine timings');
    expect(speed.generation).toBeGreaterThan(0);
    expect(speed.prompt).toBeGreaterThan(0);
    expect(report.target.keySource).toBe('--key');
    noKey(ok.stdout, ok.stderr);
  }, 120_000);

  it("on the VM (--root): key, CA, endpoint and the engine's fallback come from the appliance's report", async () => {
    const [report] = renderReport({
      config: gw.config,
      paths: gw.paths,
      apiKey: MAIN,
      generatedKeyFile: null,
      host: HOST,
      engine: { name: 'llama-server', version: 'test', threads: 2, contextPerSlot: 4096, parallelSlots: 1 },
      tls: {
        mode: 'self-signed',
        caCertPath: paths.tls.caCert,
        caFingerprintSha256: null,
        certFingerprintSha256: 'test',
        notAfter: new Date().toISOString(),
      },
      warnings: [],
      errors: [],
      generatedAt: new Date().toISOString(),
      serving: { requested: 'localai', serving: 'llama-server', fallbackReason: 'test input: LocalAI did not start' },
    });
    await mkdir(path.dirname(report!.path), { recursive: true });
    await writeFile(report!.path, report!.text, { mode: 0o600 });
    const r = await run(['check', '--root', gw.root]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(nonEmptyLines(r.stdout)[0]).toBe(
      `checking https://${HOST}:${gw.httpsPort} via 127.0.0.1 (key from the report ${report!.path}, ` +
        `CA: ${paths.tls.caCert})`,
    );
    const fallback = 'llama-server serves — FALLBACK: localai was requested (test input: LocalAI did not start)';
    expect(nonEmptyLines(r.stdout)).toContain(`WARN  engine       ${fallback}`);
    expect(nonEmptyLines(r.stdout).at(-1)).toBe('verdict: PASS (4 of 4 required checks passed)');
    noKey(r.stdout, r.stderr);
  }, 120_000);

  it('mutation: a CA that did not sign the certificate fails TLS (the rest is skipped); exit 1', async () => {
    const other = appliancePaths(await tempRoot('check-other-ca'));
    await ensureSelfSigned({ paths: other, hostname: HOST, ipAddresses: [], log: quietLog });
    const r = await run(
      ['check', '--url', `https://${HOST}:${gw.httpsPort}`, '--address', '127.0.0.1', '--ca', other.tls.caCert],
      { SLM_COPILOT_API_KEY: MAIN },
    );
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(
      /^FAIL {2}TLS {10}the chain does not verify against .*: UNABLE_TO_VERIFY_LEAF_SIGNATURE$/m,
    );
    expect(statusOf(r.stdout, 'readiness')).toBe('SKIP');
    expect(nonEmptyLines(r.stdout).at(-1)).toBe(
      'verdict: FAIL (4 of 4 required checks did not pass: tls, readyz, auth, chat)',
    );
  }, 60_000);

  it('mutation: a name the certificate does not carry fails TLS', async () => {
    const r = await run(
      ['check', '--url', `https://not-in-the-cert.example.test:${gw.httpsPort}`, '--address', '127.0.0.1'],
      { SLM_COPILOT_API_KEY: MAIN },
    );
    expect(r.exitCode).toBe(1);
    expect(statusOf(r.stdout, 'TLS')).toBe('FAIL');
  }, 60_000);

  it('mutation: a wrong key fails the streamed chat with 401 (the no-key check still passes)', async () => {
    const r = await fromOutside(gw.httpsPort, [], { SLM_COPILOT_API_KEY: 'sk-not-the-key-0123456789abcdef' });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^FAIL {2}chat stream {2}HTTP 401: Invalid API key\.$/m);
    expect(statusOf(r.stdout, 'auth')).toBe('PASS');
    expect(nonEmptyLines(r.stdout).at(-1)).toBe('verdict: FAIL (1 of 4 required checks did not pass: chat)');
  }, 60_000);

  it('mutation: a gateway without the key check fails the auth check', async () => {
    const open = await startGateway({
      tls: served,
      trustFile: paths.tls.caCert,
      enginePort: gw.enginePort,
      env: ENV,
      mutate: MUTATIONS.authRemoved,
    });
    try {
      const r = await fromOutside(open.httpsPort);
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toMatch(/^FAIL {2}auth {9}a request without a key: HTTP 200.* \(expected 401\)$/m);
    } finally {
      await open.stop();
    }
  }, 120_000);

  it('a bogus flag is one line on stderr, exit 2', async () => {
    const r = await run(['check', '--bogus']);
    expect(r.exitCode).toBe(2);
    expect(nonEmptyLines(r.stderr)).toEqual([
      'slm-copilot check: unknown option --bogus (see slm-copilot check --help)',
    ]);
    expect(r.stdout).toBe('');
  }, 30_000);

  it('mutation: with the engine stopped, readiness and the chat fail; exit 1', async () => {
    await engine!.stop();
    engine = undefined;
    const r = await fromOutside(gw.httpsPort);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^FAIL {2}readiness {4}\/readyz: HTTP 503: /m);
    expect(r.stdout).toMatch(/^FAIL {2}chat stream {2}no model id to ask for \(\/v1\/models: HTTP 502: .*\)/m);
    expect(statusOf(r.stdout, 'TLS')).toBe('PASS');
    // with the model named, the chat itself reaches the stopped engine and fails
    const named = await fromOutside(gw.httpsPort, ['--model', 'devstral-small-2']);
    expect(named.exitCode).toBe(1);
    expect(named.stdout).toMatch(/^FAIL {2}chat stream {2}HTTP 502: /m);
  }, 60_000);
});
