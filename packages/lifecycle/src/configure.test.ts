/**
 * configure for real on this host, under a temp root: the real renderers, openssl, and `nginx -t`
 * against the rendered site. Only process control is a test double (RecordingServices, named as
 * such): systemd is not PID 1 on these machines; the VM test covers the real units.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appliancePaths, ContextError } from '@slm-copilot/context-schema';
import { gatewayFiles } from '@slm-copilot/nginx-config';
import { buildManifest, writeManifest } from '@slm-copilot/model-fetch';
import { mainConf, NGINX, removeTempRoots, tempRoot } from '@slm-copilot/nginx-config/test-support/nginx';
import { createLogger, ExitCode, TaskError } from '@slm-copilot/task-kit';
import { ensureTinyModel } from '@slm-copilot/testbed';
import { configure, type StageOptions } from './configure.js';
import { renderFromState } from './bootstrap.js';
import { stateFiles, writeJson, type InstalledImage } from './state.js';
import { RecordingServices, testHost } from '../test-support/doubles.js';

const host = testHost;

let root: string;
let services: RecordingServices;
let installedImage: InstalledImage;
const baseEnv = {
  ONEAPP_COPILOT_ENGINE: 'llama-server',
  ONEAPP_COPILOT_HTTPS_PORT: '8443',
  ONEAPP_COPILOT_CONTEXT_SIZE: '4096',
};

function options(env: Record<string, string>): StageOptions {
  const conf = path.join(root, 'etc/nginx/nginx.conf');
  return {
    prefix: root,
    env,
    services,
    log: createLogger({ quiet: true }),
    hostFacts: async () => host,
    now: () => new Date('2026-11-28T00:00:00Z'),
    gateway: { testConfigCommand: [NGINX, '-t', '-q', '-c', conf], httpPort: 8080 + 1000 },
  };
}

/** sha256 of every file under root except the report, banner and state (which record the refusal). */
async function snapshot(dir: string, out = new Map<string, string>()): Promise<Map<string, string>> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await snapshot(p, out);
    else if (e.isFile())
      out.set(
        p,
        createHash('sha256')
          .update(await readFile(p))
          .digest('hex'),
      );
  }
  return out;
}

beforeAll(async () => {
  root = await tempRoot('lifecycle');
  services = new RecordingServices();
  const paths = appliancePaths(root);
  await mkdir(path.join(root, 'etc/nginx/conf.d'), { recursive: true });
  await writeFile(path.join(root, 'etc/nginx/nginx.conf'), mainConf(root, paths));
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
    await mkdir(path.join(root, 'run/nginx', d), { recursive: true });
  const model = await ensureTinyModel();
  await mkdir(paths.modelsDir, { recursive: true });
  const dest = path.join(paths.modelsDir, 'tiny.gguf');
  await symlink(model.path, dest);
  await writeManifest(dest, await buildManifest(dest, { sha256: model.sha256 }));
  installedImage = {
    engineDefault: 'llama-server',
    model: { file: 'tiny.gguf', sha256: model.sha256, source: null },
    localai: null,
    llamaServer: { sha256: 'x', source: 'test' },
    builtAt: '2026-11-28T00:00:00Z',
  };
  await writeJson(stateFiles(paths).installed, installedImage);
}, 20 * 60_000);

afterAll(() => removeTempRoots());

describe('configure', () => {
  it('renders and installs everything; nginx -t accepts it; secrets are 0600; a restart is owed', async () => {
    await configure(options(baseEnv));
    const paths = appliancePaths(root);
    expect((await stat(paths.apiKeyFile)).mode & 0o777).toBe(0o600);
    expect((await stat(paths.tls.caKey)).mode & 0o777).toBe(0o600);
    expect(await readFile(path.join(paths.systemdDir, 'slm-copilot-engine.service'), 'utf8')).toMatch(
      /--ctx-size 4096 /,
    );
    expect(await readFile(paths.nginx.siteFile, 'utf8')).toMatch(/listen 8443 ssl http2 default_server;/);
    const pending = JSON.parse(await readFile(stateFiles(paths).pending, 'utf8'));
    expect(pending).toMatchObject({
      restartEngine: true,
      engineUnit: 'slm-copilot-engine.service',
      letsEncrypt: false,
    });
    const report = JSON.parse(await readFile(stateFiles(paths).reportInputs, 'utf8'));
    expect(report.apiKey).toBe((await readFile(paths.apiKeyFile, 'utf8')).trim());
    expect(report.host).toBe('192.0.2.10');
    expect((await stat(stateFiles(paths).reportInputs)).mode & 0o777).toBe(0o600);
  }, 120_000);

  it('is idempotent: the same context again changes no file and owes no restart once bootstrap ran', async () => {
    const paths = appliancePaths(root);
    const pendingFile = stateFiles(paths).pending;
    // as bootstrap leaves it
    await writeJson(pendingFile, { ...JSON.parse(await readFile(pendingFile, 'utf8')), restartEngine: false });
    const before = await snapshot(root);
    await configure(options(baseEnv));
    const after = await snapshot(root);
    const changed = [...after].filter(([p, h]) => before.get(p) !== h).map(([p]) => path.relative(root, p));
    // only the timestamps of state records may differ
    expect(changed.filter((p) => !p.startsWith('var/lib/slm-copilot/') && !p.startsWith('run/'))).toEqual([]);
    expect(JSON.parse(await readFile(pendingFile, 'utf8')).restartEngine).toBe(false);
  }, 120_000);

  it('configure and bootstrap render byte-identical gateway files from the same Config', async () => {
    const opts = options({
      ...baseEnv,
      ONEAPP_COPILOT_CORS_ORIGINS: 'https://ide.example.com',
      ONEAPP_COPILOT_RATE_LIMIT: '7',
    });
    await configure(opts);
    const files = Object.values(gatewayFiles(appliancePaths(root)));
    const byConfigure = await Promise.all(files.map((f) => readFile(f, 'utf8')));
    expect(byConfigure[0]).toMatch(/ide\.example\.com/);
    for (const f of files) await rm(f); // bootstrap must write them again, from what configure recorded
    await renderFromState(opts);
    const byBootstrap = await Promise.all(files.map((f) => readFile(f, 'utf8')));
    for (const [i, f] of files.entries()) expect(byBootstrap[i], path.relative(root, f)).toBe(byConfigure[i]);
  }, 120_000);

  it('a changed context value takes effect and owes an engine restart', async () => {
    await configure(options({ ...baseEnv, ONEAPP_COPILOT_CONTEXT_SIZE: '8192' }));
    const paths = appliancePaths(root);
    expect(await readFile(path.join(paths.systemdDir, 'slm-copilot-engine.service'), 'utf8')).toMatch(
      /--ctx-size 8192 /,
    );
    expect(JSON.parse(await readFile(stateFiles(paths).pending, 'utf8')).restartEngine).toBe(true);
  }, 120_000);

  it('a refused context changes nothing that serves, and the report and banner name the variable', async () => {
    const paths = appliancePaths(root);
    const before = await snapshot(root);
    await expect(configure(options({ ...baseEnv, ONEAPP_COPILOT_CONTEXT_SIZE: 'abc' }))).rejects.toBeInstanceOf(
      ContextError,
    );
    const after = await snapshot(root);
    const changed = [...after]
      .filter(([p, h]) => before.get(p) !== h)
      .map(([p]) => path.relative(root, p))
      .sort();
    // only what the operator reads may change: the report (and its client snippets) and the banner
    const allowed = [
      'etc/one-appliance/config',
      'etc/slm-copilot/clients/cline-settings.json',
      'etc/slm-copilot/clients/continue-config.yaml',
      'etc/slm-copilot/motd',
      'etc/update-motd.d/60-slm-copilot',
    ];
    expect(changed.filter((p) => !allowed.includes(p))).toEqual([]);
    expect(changed).toContain('etc/one-appliance/config');
    expect(await readFile(paths.reportFile, 'utf8')).toMatch(
      /error_1 = ONEAPP_COPILOT_CONTEXT_SIZE = "abc": expected an integer/,
    );
    expect(await readFile(path.join(paths.configDir, 'motd'), 'utf8')).toMatch(
      /ERROR {4}: ONEAPP_COPILOT_CONTEXT_SIZE/,
    );
    expect(await readFile(path.join(paths.systemdDir, 'slm-copilot-engine.service'), 'utf8')).toMatch(
      /--ctx-size 8192 /,
    );
  }, 120_000);
});

describe('configure on a first boot with a refused context', () => {
  it('serves a 503 site naming the problem (never proxies) and starts nginx', async () => {
    const first = await tempRoot('lifecycle-first');
    const paths = appliancePaths(first);
    await mkdir(path.join(first, 'etc/nginx/conf.d'), { recursive: true });
    await writeFile(path.join(first, 'etc/nginx/nginx.conf'), mainConf(first, paths));
    for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
      await mkdir(path.join(first, 'run/nginx', d), { recursive: true });
    await writeJson(stateFiles(paths).installed, installedImage);
    const recorder = new RecordingServices();
    const conf = path.join(first, 'etc/nginx/nginx.conf');
    await expect(
      configure({
        ...options({ ONEAPP_COPILOT_ENGINE: 'ollama' }),
        prefix: first,
        services: recorder,
        gateway: { testConfigCommand: [NGINX, '-t', '-q', '-c', conf], httpPort: 9081 },
      }),
    ).rejects.toBeInstanceOf(ContextError);
    const site = await readFile(paths.nginx.siteFile, 'utf8');
    expect(site).toMatch(/UNCONFIGURED/);
    expect(site).toMatch(/ONEAPP_COPILOT_ENGINE/);
    expect(site).not.toMatch(/proxy_pass/);
    expect(recorder.calls).toEqual(['start nginx']);
    expect(await readFile(paths.reportFile, 'utf8')).toMatch(/error_1 = ONEAPP_COPILOT_ENGINE = "ollama"/);
  }, 120_000);
});

describe('configure on a root the install stage never built', () => {
  it('refuses before writing anything: the root stays empty', async () => {
    const empty = await tempRoot('lifecycle-empty');
    const error = await configure({ ...options(baseEnv), prefix: empty }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskError);
    expect((error as TaskError).exitCode).toBe(ExitCode.environment);
    expect((error as TaskError).message).toMatch(/installed\.json is missing/);
    expect(await readdir(empty)).toEqual([]);
  });
});
