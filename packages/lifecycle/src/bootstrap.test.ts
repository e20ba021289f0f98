/**
 * configure + bootstrap under a temp root with real processes: the stand-in `local-ai` of the test
 * image (its two failure modes), the real llama-server and tiny model from the test bed, the real
 * nginx answering /readyz. Test doubles, named as such: ProcessServices (systemd's supervision;
 * systemd is not PID 1 here) and the slow-loader double (an engine that keeps reading the model
 * slowly and then answers, standing in for a big model loading). LocalAI itself cannot run here.
 */
import { mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installLocalAiStandIn, standInModeFile } from '@slm-copilot/localai-install';
import { buildManifest, writeManifest } from '@slm-copilot/model-fetch';
import { mainConf, NGINX, removeTempRoots, tempRoot } from '@slm-copilot/nginx-config/test-support/nginx';
import {
  startOneGateDouble,
  type DoubleVm,
  type OneGateDouble,
} from '@slm-copilot/onegate/test-support/onegate-double';
import { createLogger, freePort, TaskError } from '@slm-copilot/task-kit';
import { ensureLlamaBuild, ensureTinyModel } from '@slm-copilot/testbed';
import { bootstrap, readyz } from './bootstrap.js';
import { configure } from './configure.js';
import { stagePaths, type StageOptions } from './options.js';
import { stateFiles, writeJson } from './state.js';
import { testHost } from '../test-support/doubles.js';
import { ProcessServices } from '../test-support/process-services.js';

const host = testHost;

/** Short bounds so the cases run in seconds; the appliance uses DEFAULT_WATCH_BOUNDS (W = 120 s). */
const WATCH = { noProgressMs: 2000, pollMs: 200, maxRestarts: 3 };

let model: { path: string; sha256: string };
let llamaServer: string;
/** TEST DOUBLE of OneGate (test-support of @slm-copilot/onegate): each case's VM publishes to it. */
let onegate: OneGateDouble;
beforeAll(async () => {
  onegate = await startOneGateDouble();
  model = await ensureTinyModel();
  llamaServer = (await ensureLlamaBuild()).llamaServer;
}, 30 * 60_000);
afterAll(async () => {
  await onegate.close();
  await removeTempRoots();
});

/** The requests one VM made to OneGate. */
const requestsOf = (vm: DoubleVm) => onegate.requests.filter((r) => r.headers['x-onegate-vmid'] === String(vm.id));

/**
 * Exactly one PUT /vm, as `onegate vm update --data` sends it: the token and VM id headers, a form body
 * of form-safe bytes only, decoding to the report's values in order — READY=YES only when asked; no key.
 */
function expectPublished(vm: DoubleVm, report: Record<string, Record<string, string>>, key: string, ready: boolean) {
  const sent = requestsOf(vm);
  expect(sent.map((r) => [r.method, r.path, r.status])).toEqual([['PUT', '/vm', 200]]);
  const put = sent[0]!;
  expect(put.headers).toMatchObject({
    'x-onegate-token': vm.token,
    'content-type': 'application/x-www-form-urlencoded',
  });
  expect(put.body).toMatch(/^data=[A-Za-z0-9%._*+-]+&type=1$/);
  const lines = [
    `ONEAPP_COPILOT_ENDPOINT=${report.Connection!.endpoint}`,
    `ONEAPP_COPILOT_MODEL_ID=${report.Connection!.model_id}`,
    `ONEAPP_COPILOT_ENGINE_SERVING=${report.Engine!.serving}`,
    `ONEAPP_COPILOT_TLS_CA_SHA256=${report.TLS!.ca_sha256}`,
    `ONEAPP_COPILOT_TLS_CERT_SHA256=${report.TLS!.certificate_sha256}`,
    ...(ready ? ['READY=YES'] : []),
  ];
  expect(report.TLS!.ca_sha256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  expect(new URLSearchParams(put.body).get('data')).toBe(lines.join('\n'));
  expect(JSON.stringify(sent)).not.toContain(key);
  expect(vm.userTemplate).toEqual(Object.fromEntries(lines.map((l) => [l.split('=')[0], l.slice(l.indexOf('=') + 1)])));
}

/**
 * TEST DOUBLE (slow loader), not LocalAI: reads the model slowly for `seconds` with next to no CPU,
 * then answers 200.
 */
const slowLoader = (modelFile: string, seconds: number) => `#!/usr/bin/env python3
# TEST DOUBLE (slow loader), not LocalAI: stands in for an engine loading a big model.
import http.server, os, time
host, port = os.environ['LOCALAI_ADDRESS'].rsplit(':', 1)
fd = os.open('${modelFile}', os.O_RDONLY)
end = time.time() + ${seconds}
while time.time() < end:
    if not os.read(fd, 256 * 1024): os.lseek(fd, 0, 0)
    time.sleep(0.25)
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'{}')
    def log_message(self, *a): pass
http.server.HTTPServer((host, int(port)), Ok).serve_forever()
`;

type LocalAi = 'exit' | 'hang' | 'slow-loader';

/** A temp root laid out like the test image after install: stand-in LocalAI, llama-server (or not), tiny model. */
async function appliance(tag: string, opts: { localai: LocalAi; llamaServer: boolean; env?: Record<string, string> }) {
  const root = await tempRoot(`bootstrap-${tag}`);
  const [httpsPort, httpPort, enginePort] = [await freePort(), await freePort(), await freePort()];
  const paths = stagePaths({ prefix: root, enginePort });
  const conf = path.join(root, 'etc/nginx/nginx.conf');
  await mkdir(path.dirname(conf), { recursive: true });
  await writeFile(conf, mainConf(root, paths));
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
    await mkdir(path.join(root, 'run/nginx', d), { recursive: true });
  await mkdir(paths.modelsDir, { recursive: true });
  const dest = path.join(paths.modelsDir, 'tiny.gguf');
  await symlink(model.path, dest);
  await writeManifest(dest, await buildManifest(dest, { sha256: model.sha256 }));
  const quiet = createLogger({ quiet: true });
  const standIn = await installLocalAiStandIn(paths, quiet);
  if (opts.localai === 'hang') await writeFile(standInModeFile(paths), 'hang\n');
  if (opts.localai === 'slow-loader')
    await writeFile(paths.engine.localaiBinary, slowLoader(dest, (3 * WATCH.noProgressMs) / 1000), { mode: 0o755 });
  if (opts.llamaServer) {
    await mkdir(path.dirname(paths.engine.llamaServerBinary), { recursive: true });
    await symlink(llamaServer, paths.engine.llamaServerBinary);
  }
  await writeJson(stateFiles(paths).installed, {
    engineDefault: 'localai',
    model: { file: 'tiny.gguf', sha256: model.sha256, source: null },
    localai: { version: 'stand-in', sha256: standIn.sha256, standIn: true },
    llamaServer: { sha256: 'x', source: 'test', variants: [] },
    builtAt: '2026-11-28T00:00:00Z',
  });
  const lines: string[] = [];
  const stream = { write: (chunk: string) => (lines.push(chunk), true) } as unknown as NodeJS.WritableStream;
  const services = new ProcessServices({ paths, httpsPort, restartSecMs: 300 });
  const options: StageOptions & { readyTimeoutMs: number } = {
    prefix: root,
    env: { ONEAPP_COPILOT_HTTPS_PORT: String(httpsPort), ONEAPP_COPILOT_CONTEXT_SIZE: '4096', ...opts.env },
    services,
    log: createLogger({ stream, color: false }),
    hostFacts: async () => host,
    now: () => new Date('2026-11-28T00:00:00Z'),
    gateway: { testConfigCommand: [NGINX, '-t', '-q', '-c', conf], httpPort, listenAddresses: ['127.0.0.1'] },
    enginePort,
    watch: WATCH,
    readyTimeoutMs: 120_000,
  };
  return { root, paths, services, options, httpsPort, log: () => lines.join('') };
}

/** `[Section]` / `key = value` (the one-apps report format). */
function parseIni(text: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  let section = '';
  for (const line of text.split('\n')) {
    const s = /^\[(.+)\]$/.exec(line);
    if (s) out[(section = s[1]!)] = {};
    const kv = /^([a-z0-9_]+) = (.*)$/.exec(line);
    if (kv && section) out[section]![kv[1]!] = kv[2]!;
  }
  return out;
}

type App = Awaited<ReturnType<typeof appliance>>;
async function boot(
  app: App,
): Promise<{ error: unknown; report: Record<string, Record<string, string>>; key: string }> {
  await configure(app.options);
  const error = await bootstrap(app.options).then(
    () => null,
    (e: unknown) => e,
  );
  const report = parseIni(await readFile(app.paths.reportFile, 'utf8'));
  return { error, report, key: (await readFile(app.paths.apiKeyFile, 'utf8')).trim() };
}

const unitText = (app: App) => readFile(path.join(app.paths.systemdDir, 'slm-copilot-engine.service'), 'utf8');
const engineRestarts = (app: App) =>
  app.services.calls.filter((c) => c === 'restart slm-copilot-engine.service').length;

describe('bootstrap: the engine the user chose, or a working one', () => {
  it('stand-in mode exit: falls back to llama-server with reason "exited"; /readyz reflects llama-server', async () => {
    const vm = onegate.addVm();
    const app = await appliance('exit', { localai: 'exit', llamaServer: true, env: onegate.contextOf(vm) });
    try {
      const { error, report, key } = await boot(app);
      expect(error).toBeNull();
      expectPublished(vm, report, key, false);
      expect(report.Engine).toMatchObject({
        requested: 'localai',
        serving: 'llama-server',
        fallback: 'yes',
        engine: 'llama-server',
      });
      expect(report.Engine!.fallback_reason).toMatch(/^exited: /);
      expect(report.Status!.state).toBe(
        'ready: serving with the fallback engine llama-server (localai did not become ready)',
      );
      expect(report.Connection!.api_key).toBe(key);
      expect(app.services.engineOutput).toContain('STAND-IN, not LocalAI');
      expect(await readyz(app.httpsPort)).toBe(200);
      // the gateway was re-rendered for llama-server: its /readyz asks /health, not LocalAI's monitor
      expect(await readFile(app.paths.nginx.siteFile, 'utf8')).toContain(
        'proxy_pass http://slm_copilot_engine/health;',
      );
      expect(await unitText(app)).toMatch(/^ExecStart=\S+\/llama-server /m);
      expect(app.log()).toMatch(/engine localai did not become ready \(exited: .*\): falling back to llama-server/);
      expect(app.log()).not.toContain(key);
      expect(await readFile(path.join(app.paths.configDir, 'motd'), 'utf8')).toContain(
        'FALLBACK: localai was requested',
      );
    } finally {
      await app.services.stopAll();
    }
  }, 120_000);

  it('stand-in mode hang: falls back after the no-progress window with reason "no progress"', async () => {
    const app = await appliance('hang', { localai: 'hang', llamaServer: true });
    try {
      const { error, report } = await boot(app);
      expect(error).toBeNull();
      expect(report.Engine).toMatchObject({ requested: 'localai', serving: 'llama-server', fallback: 'yes' });
      expect(report.Engine!.fallback_reason).toMatch(/^no progress: pid \d+ gained no CPU time and read no bytes/);
      expect(await readyz(app.httpsPort)).toBe(200);
    } finally {
      await app.services.stopAll();
    }
  }, 120_000);

  it('an engine that loads slowly but keeps reading (slow-loader double) is not failed over', async () => {
    const app = await appliance('slow', { localai: 'slow-loader', llamaServer: true });
    try {
      const { error, report } = await boot(app);
      expect(error).toBeNull();
      expect(report.Engine).toMatchObject({ requested: 'localai', serving: 'localai', fallback: 'no' });
      expect(report.Engine!.fallback_reason).toBeUndefined();
      expect(engineRestarts(app)).toBe(1);
      expect(await unitText(app)).toMatch(/^ExecStart=\S+\/local-ai run$/m);
      expect(await readyz(app.httpsPort)).toBe(200);
    } finally {
      await app.services.stopAll();
    }
  }, 120_000);

  it('the chosen engine working (llama-server): no fallback', async () => {
    const vm = onegate.addVm();
    const app = await appliance('chosen', {
      localai: 'exit',
      llamaServer: true,
      env: { ONEAPP_COPILOT_ENGINE: 'llama-server', REPORT_READY: 'YES', ...onegate.contextOf(vm) },
    });
    try {
      const { error, report, key } = await boot(app);
      expect(error).toBeNull();
      expectPublished(vm, report, key, true);
      expect(app.log()).toContain(`published to OneGate (VM ${vm.id}): `);
      expect(report.Engine).toMatchObject({ requested: 'llama-server', serving: 'llama-server', fallback: 'no' });
      expect(report.Status!.state).toBe('ready');
      expect(engineRestarts(app)).toBe(1);
      expect(app.services.engineOutput).not.toContain('STAND-IN');
    } finally {
      await app.services.stopAll();
    }
  }, 120_000);

  it('both engines failing: bootstrap fails; the report (0600) has endpoint, key, what failed, the fix', async () => {
    const vm = onegate.addVm();
    const env = { REPORT_READY: 'YES', ...onegate.contextOf(vm) };
    const app = await appliance('both', { localai: 'exit', llamaServer: false, env });
    try {
      const { error, report, key } = await boot(app);
      expect(error).toBeInstanceOf(TaskError);
      expect((error as Error).message).toMatch(
        /^no engine became ready: localai: exited: .*; llama-server: binary missing/,
      );
      expect(report.Status!.state).toBe('failed: no engine became ready; the API answers 503 until one does');
      expect(report.Status!.failure_1).toMatch(/^localai: exited: /);
      expect(report.Status!.failure_2).toBe(
        `llama-server: binary missing or not executable: ${app.paths.engine.llamaServerBinary}`,
      );
      expect(report.Status!.fix).toContain('journalctl -u slm-copilot-engine');
      expect(report.Connection).toMatchObject({ api_key: key, endpoint: `https://192.0.2.10:${app.httpsPort}/v1` });
      expect(report.Engine).toMatchObject({ requested: 'localai', serving: 'none' });
      expect((await stat(app.paths.reportFile)).mode & 0o777).toBe(0o600);
      expect(await readFile(path.join(app.paths.configDir, 'motd'), 'utf8')).toContain(
        'FAILED   : llama-server: binary missing',
      );
      expect(await readyz(app.httpsPort)).toBe(503);
      expect(app.log()).not.toContain(key);
      expect(requestsOf(vm)).toEqual([]); // no engine ready: nothing published, READY=YES least of all
    } finally {
      await app.services.stopAll();
      await rm(app.root, { recursive: true, force: true });
    }
  }, 120_000);
});
