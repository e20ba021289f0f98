/**
 * Applying a new context to a running appliance (a CONTEXT CD swapped without one-context), through the
 * shipped path: applyContext + contextStageRunner, i.e. our runner's configure and bootstrap stages. The
 * first block runs the lock and the decisions with recording stages; the second runs the real stages
 * under a temp root with the real llama-server, tiny model and nginx. Test double, named as such:
 * ProcessServices (systemd's supervision; systemd is not PID 1 here).
 */
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildManifest, writeManifest } from '@slm-copilot/model-fetch';
import { httpsGet } from '@slm-copilot/nginx-config/test-support/client';
import { mainConf, NGINX, removeTempRoots, tempRoot } from '@slm-copilot/nginx-config/test-support/nginx';
import { createLogger, ExitCode, freePort } from '@slm-copilot/task-kit';
import { ensureLlamaBuild, ensureTinyModel } from '@slm-copilot/testbed';
import { stagePaths, type StageOptions } from './options.js';
import { applyContext, contextRunPaths, contextStageRunner, type ContextStageRunner } from './reconfigure.js';
import { contractPaths } from './runner.js';
import { stateFiles, writeJson } from './state.js';
import { testHost } from '../test-support/doubles.js';
import { ProcessServices } from '../test-support/process-services.js';

const quiet = createLogger({ quiet: true });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A context.sh as OpenNebula writes it (single-quoted values). */
const contextSh = (values: Record<string, string>) =>
  `${Object.entries(values)
    .map(([k, v]) => `${k}='${v}'`)
    .join('\n')}\n`;

afterAll(() => removeTempRoots());

describe('applyContext: one run at a time, configure && bootstrap, skip what was applied', () => {
  /** Stages that only record when they start and end (slowly enough to overlap if nothing serialized them). */
  function recording(tag: string, events: string[], exitCodes: Partial<Record<string, number>> = {}) {
    const run: ContextStageRunner = async (stage, file) => {
      events.push(`${tag} ${stage} start ${(await readFile(file, 'utf8')).trim()}`);
      await sleep(150);
      events.push(`${tag} ${stage} end`);
      return exitCodes[stage] ?? ExitCode.ok;
    };
    return run;
  }

  it('two runs started together never interleave; each applies its own context', async () => {
    const root = await tempRoot('reconfigure-lock');
    const events: string[] = [];
    const files = await Promise.all(
      ['A', 'B'].map(async (t) => {
        const file = path.join(root, `${t}.sh`);
        await writeFile(file, contextSh({ ONEAPP_COPILOT_MODEL_ID: t }));
        return file;
      }),
    );
    const results = await Promise.all(
      ['A', 'B'].map((tag, i) =>
        applyContext({ root, contextFile: files[i]!, ifChanged: true, runStage: recording(tag, events), log: quiet }),
      ),
    );
    expect(results.map((r) => r.stages)).toEqual([
      ['configure', 'bootstrap'],
      ['configure', 'bootstrap'],
    ]);
    // whichever got the lock first ran both its stages before the other started
    const first = events[0]!.split(' ')[0]!;
    const second = first === 'A' ? 'B' : 'A';
    expect(events).toEqual([
      `${first} configure start ONEAPP_COPILOT_MODEL_ID='${first}'`,
      `${first} configure end`,
      `${first} bootstrap start ONEAPP_COPILOT_MODEL_ID='${first}'`,
      `${first} bootstrap end`,
      `${second} configure start ONEAPP_COPILOT_MODEL_ID='${second}'`,
      `${second} configure end`,
      `${second} bootstrap start ONEAPP_COPILOT_MODEL_ID='${second}'`,
      `${second} bootstrap end`,
    ]);
  });

  it('--if-changed skips the context last applied; a refused configure skips bootstrap, returns its code', async () => {
    const root = await tempRoot('reconfigure-decide');
    const file = path.join(root, 'ctx.sh');
    await writeFile(file, contextSh({ ONEAPP_COPILOT_RATE_LIMIT: '5' }));
    const events: string[] = [];
    const apply = (ifChanged: boolean, codes?: Partial<Record<string, number>>) =>
      applyContext({ root, contextFile: file, ifChanged, runStage: recording('r', events, codes), log: quiet });
    expect(await apply(true)).toEqual({ applied: true, stages: ['configure', 'bootstrap'], exitCode: 0 });
    expect(await apply(true)).toEqual({ applied: false, stages: [], exitCode: 0 });
    // without --if-changed (the boot run) it always applies
    expect((await apply(false)).stages).toEqual(['configure', 'bootstrap']);
    await writeFile(file, contextSh({ ONEAPP_COPILOT_RATE_LIMIT: 'x' }));
    expect(await apply(true, { configure: ExitCode.usage })).toEqual({
      applied: true,
      stages: ['configure'],
      exitCode: ExitCode.usage,
    });
    // the refused context was recorded as applied: a spurious change event does not retry it
    expect(await apply(true)).toMatchObject({ applied: false });
    expect(await readFile(contextRunPaths(root).applied, 'utf8')).toBe(await readFile(file, 'utf8'));
    expect((await stat(contextRunPaths(root).applied)).mode & 0o777).toBe(0o600);
    expect(events.filter((e) => e.includes('start'))).toHaveLength(5);
  });
});

describe('applyContext with the real stages: a good new context, then a refused one', () => {
  let model: { path: string; sha256: string };
  let llamaServer: string;
  beforeAll(async () => {
    model = await ensureTinyModel();
    llamaServer = (await ensureLlamaBuild()).llamaServer;
  }, 30 * 60_000);

  /** A temp root laid out like the image after install (llama-server, tiny model), run by the double. */
  async function appliance() {
    const root = await tempRoot('reconfigure-real');
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
    await mkdir(path.dirname(paths.engine.llamaServerBinary), { recursive: true });
    await symlink(llamaServer, paths.engine.llamaServerBinary);
    await writeJson(stateFiles(paths).installed, {
      engineDefault: 'llama-server',
      model: { file: 'tiny.gguf', sha256: model.sha256, source: null },
      localai: null,
      llamaServer: { sha256: 'x', source: 'test', variants: [] },
      builtAt: '2026-11-28T00:00:00Z',
    });
    const services = new ProcessServices({ paths, httpsPort, restartSecMs: 300 });
    const options = (env: Record<string, string | undefined>, log: StageOptions['log']) => ({
      prefix: root,
      env,
      services,
      log,
      hostFacts: async () => testHost,
      gateway: { testConfigCommand: [NGINX, '-t', '-q', '-c', conf], httpPort, listenAddresses: ['127.0.0.1'] },
      enginePort,
      watch: { noProgressMs: 2000, pollMs: 200, maxRestarts: 3 },
      readyTimeoutMs: 120_000,
    });
    const apply = async (values: Record<string, string>, ifChanged = true) => {
      const contextFile = path.join(root, 'context.sh');
      await writeFile(contextFile, contextSh(values));
      return applyContext({ root, contextFile, ifChanged, runStage: contextStageRunner(root, options), log: quiet });
    };
    /** GET /v1/models through the real nginx with a key, verifying the per-VM CA; the status. */
    const models = async (key: string) =>
      (
        await httpsGet(`https://localhost:${httpsPort}/v1/models`, {
          ca: await readFile(paths.tls.caCert),
          resolveTo: '127.0.0.1',
          headers: { authorization: `Bearer ${key}` },
        })
      ).status;
    /** The Access-Control-Allow-Origin of a CORS preflight from `origin` (nginx answers it, no key needed). */
    const allowedOrigin = async (origin: string) =>
      (
        await httpsGet(`https://localhost:${httpsPort}/v1/chat/completions`, {
          method: 'OPTIONS',
          ca: await readFile(paths.tls.caCert),
          resolveTo: '127.0.0.1',
          headers: { origin, 'access-control-request-method': 'POST' },
        })
      ).headers['access-control-allow-origin'] as string | undefined;
    return { root, paths, services, httpsPort, apply, models, allowedOrigin };
  }

  it('gateway values: no engine restart; a new key served; a refused context named, masked, no change', async () => {
    const app = await appliance();
    const status = () => readFile(contractPaths(app.root).status, 'utf8').then((s) => s.trim());
    const engineRestarts = () => app.services.calls.filter((c) => c.startsWith('restart slm-copilot-engine')).length;
    const base = {
      ONEAPP_COPILOT_ENGINE: 'llama-server',
      ONEAPP_COPILOT_HTTPS_PORT: String(app.httpsPort),
      ONEAPP_COPILOT_CONTEXT_SIZE: '4096',
    };
    try {
      expect(await app.apply(base, false)).toMatchObject({ exitCode: 0, stages: ['configure', 'bootstrap'] });
      expect(await status()).toBe('bootstrap_success');
      const mainKey = (await readFile(app.paths.apiKeyFile, 'utf8')).trim();
      const extraKey = 'team-member-key-0123456789';
      expect(await app.models(mainKey)).toBe(200);
      expect(await app.models(extraKey)).toBe(401);
      expect(engineRestarts()).toBe(1);

      // gateway values only (a CORS origin, a rate limit): nginx reloaded, the engine left alone
      const ide = 'https://ide.test';
      expect(await app.allowedOrigin(ide)).toBeUndefined();
      const gatewayOnly = { ...base, ONEAPP_COPILOT_CORS_ORIGINS: ide, ONEAPP_COPILOT_RATE_LIMIT: '30' };
      const callsBefore = app.services.calls.length;
      expect(await app.apply(gatewayOnly)).toMatchObject({ exitCode: 0, stages: ['configure', 'bootstrap'] });
      expect(await status()).toBe('bootstrap_success');
      expect(app.services.calls.slice(callsBefore)).toContain('reload nginx');
      expect(engineRestarts()).toBe(1);
      // nginx's reload replaces its workers asynchronously: a bounded wait
      let origin: string | undefined;
      for (let i = 0; i < 50 && origin !== ide; i++, await sleep(100)) origin = await app.allowedOrigin(ide);
      expect(origin).toBe(ide);

      // one more API key: served too (the engine restarts: the keys are part of its saved prompt cache's id)
      const good = { ...gatewayOnly, ONEAPP_COPILOT_EXTRA_API_KEYS: extraKey };
      expect(await app.apply(good)).toMatchObject({ exitCode: 0, stages: ['configure', 'bootstrap'] });
      let extra = 0;
      for (let i = 0; i < 50 && extra !== 200; i++, await sleep(100)) extra = await app.models(extraKey);
      expect(extra).toBe(200);
      expect(await app.models(mainKey)).toBe(200);
      const restartsBeforeRefusal = engineRestarts();

      // refused: a bad number and a bad secret; bootstrap does not run, the good configuration keeps serving
      const site = await readFile(app.paths.nginx.siteFile, 'utf8');
      const bad = { ...good, ONEAPP_COPILOT_CONTEXT_SIZE: 'lots', ONEAPP_COPILOT_EXTRA_API_KEYS: 'tooshort' };
      const refused = await app.apply(bad);
      expect(refused.stages).toEqual(['configure']);
      expect(refused.exitCode).not.toBe(0);
      expect(await status()).toBe('configure_failure');
      const report = await readFile(app.paths.reportFile, 'utf8');
      expect(report).toMatch(/ONEAPP_COPILOT_CONTEXT_SIZE = "lots": expected an integer/);
      expect(report).toMatch(/ONEAPP_COPILOT_EXTRA_API_KEYS = \[hidden\]: expected up to 64 distinct/);
      const stageLog = await readFile(contractPaths(app.root).log('configure'), 'utf8');
      expect(stageLog).toMatch(/ONEAPP_COPILOT_CONTEXT_SIZE = "lots"/);
      expect(stageLog).toMatch(/ONEAPP_COPILOT_EXTRA_API_KEYS = \[hidden\]/);
      expect(stageLog + report).not.toContain('tooshort');
      expect(await readFile(app.paths.nginx.siteFile, 'utf8')).toBe(site);
      expect(await app.models(extraKey)).toBe(200);
      expect(engineRestarts()).toBe(restartsBeforeRefusal);

      // the same refused CD again (a spurious change event): nothing runs
      expect(await app.apply(bad)).toMatchObject({ applied: false, exitCode: 0 });
      expect(await status()).toBe('configure_failure');
    } finally {
      await app.services.stopAll();
    }
  }, 300_000);
});
