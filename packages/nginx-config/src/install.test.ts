// installGateway against the real nginx: a render that fails `nginx -t` never replaces the running
// configuration; a good one is tested, written and reloaded.
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TaskError, type FileSet } from '@slm-copilot/task-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { installGateway } from './install.js';
import { renderGateway } from './render.js';
import { httpsGet } from '../test-support/client.js';
import { mutation } from '../test-support/mutate.js';
import { startGateway, testConfig, type Gateway, removeTempRoots } from '../test-support/nginx.js';
import { waitFor } from '../test-support/poll.js';
import { startUpstreamDouble, type UpstreamDouble } from '../test-support/upstream-double.js';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';

const MAIN = 'sk-test-main-key-0123456789abcdef';
const NEW_KEY = 'sk-added-later-0123456789abcdef';

let gw: Gateway;
let up: UpstreamDouble;
beforeAll(async () => {
  up = await startUpstreamDouble();
  gw = await startGateway({ tag: 'install', enginePort: up.port });
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await up?.close();
  removeTempRoots();
}, 30_000);

const status = async (key: string) =>
  (await httpsGet(`${gw.baseUrl}/v1/models`, { ca: gw.trustPem, headers: { Authorization: `Bearer ${key}` } })).status;
const snapshot = async (files: FileSet) =>
  Promise.all(files.map(async (f) => [f.path, await readFile(f.path, 'utf8'), (await stat(f.path)).mode & 0o777]));
const rerender = (extra: string[]) =>
  renderGateway(
    testConfig({ ONEAPP_COPILOT_HTTPS_PORT: String(gw.httpsPort), ONEAPP_COPILOT_EXTRA_API_KEYS: extra.join(',') }),
    {
      paths: gw.paths,
      keys: { main: MAIN, extra },
      tls: {
        certificate: path.join(gw.root, 'throwaway-tls/throwaway.crt'),
        key: path.join(gw.root, 'throwaway-tls/throwaway.key'),
      },
      httpPort: gw.httpPort,
      listenAddresses: ['127.0.0.1'],
      keyFileOwner: null,
    },
  );
const install = (files: FileSet) =>
  installGateway(files, { testConfigCommand: gw.testCommand, reload: gw.reloadCommand, log: quietLog });

/** Waits until requests with `key` get `want` (a reload's new workers take over at their own pace). */
const answers = (key: string, want: number) =>
  waitFor(`${want} for key ${key.slice(0, 8)}…`, async () => (await status(key)) === want);

describe('installGateway', () => {
  it('refuses a render that fails nginx -t, restores every file, and the old configuration keeps serving', async () => {
    expect(await status(MAIN)).toBe(200);
    const good = rerender([]);
    const before = await snapshot(good);
    // A broken render that also adds a key: if it were loaded, NEW_KEY would work.
    const broken = mutation(
      'slm-copilot.conf',
      '    server_tokens off;\n',
      '    server_tokens off;\n    this_is_not_a_directive on;\n',
    )(rerender([NEW_KEY]));
    const err = await install(broken).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).message).toMatch(
      new RegExp(
        '^nginx -t refused the new gateway configuration; the previous configuration was restored and keeps ' +
          'serving:\n.*unknown directive "this_is_not_a_directive"',
        's',
      ),
    );
    expect(await snapshot(good)).toEqual(before);
    const [bin, ...args] = gw.testCommand;
    expect((await $({ nothrow: true, quiet: true })`${bin!} ${args}`).exitCode).toBe(0);
    // even a reload now (e.g. logrotate, certbot) loads the good files
    const [rb, ...rargs] = gw.reloadCommand;
    const reloads = await gw.reloads();
    await $({ quiet: true })`${rb!} ${rargs}`;
    await waitFor('nginx to finish the reload', async () => (await gw.reloads()) > reloads);
    expect(await status(MAIN)).toBe(200);
    expect(await status(NEW_KEY)).toBe(401);
  });

  it('shows why the restore matters: without it, the broken files would stay and nginx -t fails', async () => {
    const broken = mutation(
      'slm-copilot.conf',
      '    server_tokens off;\n',
      '    server_tokens off;\n    this_is_not_a_directive on;\n',
    )(rerender([]));
    const good = rerender([]);
    for (const f of broken) await writeFile(f.path, f.text);
    const [bin, ...args] = gw.testCommand;
    expect((await $({ nothrow: true, quiet: true })`${bin!} ${args}`).exitCode).not.toBe(0);
    for (const f of good) await writeFile(f.path, f.text);
    expect((await $({ nothrow: true, quiet: true })`${bin!} ${args}`).exitCode).toBe(0);
  });

  it('installs a good render: tested, written and reloaded (the new key works)', async () => {
    expect(await status(NEW_KEY)).toBe(401);
    const r = await install(rerender([NEW_KEY]));
    expect(r.tested).toBe(true);
    expect(r.reloaded).toBe(true);
    expect(r.changed.map((p) => path.basename(p)).sort()).toEqual(['api-keys.conf']);
    await answers(NEW_KEY, 200);
    expect(await status(MAIN)).toBe(200);
    // the same render again: nothing to do
    expect(await install(rerender([NEW_KEY]))).toEqual({ changed: [], tested: false, reloaded: false });
  });

  it('removes a clashing file only when the result passes, and restores it otherwise', async () => {
    const clash = path.join(gw.paths.nginx.confDir, 'conf.d', 'zz-stock-default.conf');
    // like Debian's default site: a second default_server on our port makes nginx -t fail
    await writeFile(clash, `server {\n    listen 127.0.0.1:${gw.httpPort} default_server;\n}\n`);
    const [bin, ...args] = gw.testCommand;
    expect((await $({ nothrow: true, quiet: true })`${bin!} ${args}`).exitCode).not.toBe(0);
    const broken = mutation(
      'slm-copilot.conf',
      '    server_tokens off;\n',
      '    server_tokens off;\n    nope on;\n',
    )(rerender([]));
    await expect(
      installGateway(broken, {
        testConfigCommand: gw.testCommand,
        reload: gw.reloadCommand,
        removeFile: clash,
        log: quietLog,
      }),
    ).rejects.toThrow(/nginx -t refused/);
    expect(await readFile(clash, 'utf8')).toContain('default_server');
    const r = await installGateway(rerender([]), {
      testConfigCommand: gw.testCommand,
      reload: gw.reloadCommand,
      removeFile: clash,
      log: quietLog,
    });
    expect(r.reloaded).toBe(true);
    await expect(stat(clash)).rejects.toThrow(/ENOENT/);
    await answers(NEW_KEY, 401);
    expect(await status(MAIN)).toBe(200);
  });
});
