/**
 * configure and bootstrap for the service roles, for real under a temp root (renderers, openssl,
 * `nginx -t`); only process control is the RecordingServices double, as in configure.test.ts.
 */
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { appliancePaths } from '@slm-copilot/context-schema';
import { roleFiles } from '@slm-copilot/nginx-config';
import { buildManifest, writeManifest } from '@slm-copilot/model-fetch';
import { mainConf, NGINX, removeTempRoots, tempRoot } from '@slm-copilot/nginx-config/test-support/nginx';
import { createLogger } from '@slm-copilot/task-kit';
import { ensureTinyModel } from '@slm-copilot/testbed';
import { afterAll, describe, expect, it } from 'vitest';
import { RecordingServices, testHost } from '../../test-support/doubles.js';
import { bootstrap } from '../bootstrap.js';
import { configure, type StageOptions } from '../configure.js';
import { stateFiles, writeJson } from '../state.js';
import { TEAM_UNIT } from './unit.js';
import { productionApply, readConfigured, teamStateFile } from './wiring.js';

afterAll(() => removeTempRoots());

async function appliance(): Promise<{ root: string; options: (env: Record<string, string>) => StageOptions }> {
  const root = await tempRoot('lifecycle-team');
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
  await writeJson(stateFiles(paths).installed, {
    engineDefault: 'llama-server',
    model: { file: 'tiny.gguf', sha256: model.sha256, source: null },
    localai: null,
    llamaServer: { sha256: 'x', source: 'test' },
    builtAt: '2026-11-28T00:00:00Z',
  });
  const services = new RecordingServices();
  const conf = path.join(root, 'etc/nginx/nginx.conf');
  return {
    root,
    options: (env) => ({
      prefix: root,
      env: { ONEAPP_COPILOT_ENGINE: 'llama-server', ONEAPP_COPILOT_HTTPS_PORT: '8443', ...env },
      services,
      log: createLogger({ quiet: true }),
      hostFacts: async () => testHost,
      gateway: { testConfigCommand: [NGINX, '-t', '-q', '-c', conf], httpPort: 9080 },
    }),
  };
}

describe('the service roles through configure and bootstrap', () => {
  it('lb: an upstream file and a client certificate; the refresher keeps its set across configure', async () => {
    const { root, options } = await appliance();
    const paths = appliancePaths(root);
    const opts = options({ ONEAPP_COPILOT_ROLE: 'lb' });
    await configure(opts);
    const upstream = roleFiles(paths).teamUpstream;
    expect(await readFile(upstream, 'utf8')).toContain('server 127.0.0.1:9 down;');
    expect(await readFile(paths.nginx.siteFile, 'utf8')).toContain('proxy_pass https://slm_copilot_team;');
    expect((await stat(path.join(paths.stateDir, 'tls', 'lb-client.key'))).mode & 0o777).toBe(0o600);
    expect(await readFile(path.join(paths.systemdDir, TEAM_UNIT), 'utf8')).toContain(' team --context-file ');

    // what the refresher does when /service changes: the same render, nginx -t, the set kept
    const apply = productionApply(await readConfigured(paths), paths, opts);
    await apply({ role: 'lb', backends: [{ vmId: '5', address: '10.0.0.5:8443', slots: 2 }] });
    expect(await readFile(upstream, 'utf8')).toContain('server 10.0.0.5:8443 max_conns=2 ');
    expect(JSON.parse(await readFile(teamStateFile(paths), 'utf8')).backends).toHaveLength(1);
    await configure(opts); // a boot or reconfiguration renders the same set, not an empty one
    expect(await readFile(upstream, 'utf8')).toContain('server 10.0.0.5:8443 max_conns=2 ');

    const services = opts.services as RecordingServices;
    services.calls.length = 0;
    // no nginx runs here, so no node answers: the bound passes and bootstrap says why
    await expect(bootstrap({ ...opts, readyTimeoutMs: 100 })).rejects.toThrow(/no inference node answered/);
    // an engine left running from another role (a VM switched to lb) is stopped and no longer starts at boot
    expect(services.calls).toEqual([
      'daemon-reload',
      'stop+disable slm-copilot-engine.service',
      'start nginx',
      `restart ${TEAM_UNIT}`,
    ]);
  }, 120_000);

  it('inference: no key map, the lb list; standalone again removes the unit', async () => {
    const { root, options } = await appliance();
    const paths = appliancePaths(root);
    await configure(options({ ONEAPP_COPILOT_ROLE: 'inference' }));
    expect(await readFile(roleFiles(paths).lbClients, 'utf8')).toContain('every request is refused');
    expect(await readFile(paths.nginx.siteFile, 'utf8')).toContain('ssl_verify_client optional_no_ca;');
    await configure(options({}));
    await expect(stat(path.join(paths.systemdDir, TEAM_UNIT))).rejects.toThrow(/ENOENT/);
  }, 120_000);
});
