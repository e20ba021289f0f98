/**
 * The client against the OneGate double (test-support/onegate-double.ts: real HTTP on loopback, the
 * server's answers; OpenNebula's server cannot run here). Asserts the exact requests.
 */
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '@slm-copilot/task-kit';
import { captureLog } from '@slm-copilot/task-kit/test-support/log';
import { startOneGateDouble, type OneGateDouble } from '../test-support/onegate-double.js';
import { OneGateClient } from './client.js';
import { oneGateSetup } from './config.js';
import { nodeNics } from './documents.js';
import { publishToOneGate } from './publish.js';

const FAST = { attempts: 3, backoffMs: 20, timeoutMs: 2_000 };
const doubles: OneGateDouble[] = [];
afterEach(async () => {
  for (const d of doubles.splice(0)) await d.close();
});
async function double(options: { port?: number } = {}) {
  const d = await startOneGateDouble(options);
  doubles.push(d);
  return d;
}
/** A context with no token file to fall back on (the one_env path does not exist). */
const noOneEnv = path.join(tmpdir(), 'no-such-dir', 'one_env');

describe('PUT /vm: the bytes the official client sends', () => {
  it('type 1: one form body with the K=V lines, the token and VM id headers; USER_TEMPLATE updated', async () => {
    const og = await double();
    const vm = og.addVm({ id: 7 });
    const { log, lines } = captureLog();
    const data = { ONEAPP_COPILOT_ENDPOINT: 'https://192.0.2.10:8443/v1', READY: 'YES' };
    const result = await publishToOneGate(data, { env: og.contextOf(vm), log, oneEnvFile: noOneEnv, ...FAST });
    expect(result).toEqual({ published: true, keys: ['ONEAPP_COPILOT_ENDPOINT', 'READY'] });
    expect(og.requests).toHaveLength(1);
    const [put] = og.requests;
    expect(put).toMatchObject({ method: 'PUT', path: '/vm', status: 200 });
    // Ruby's URI.encode_www_form({data: "…\n…", type: 1}): '=' %3D, ':' %3A, '/' %2F, "\n" %0A
    expect(put!.body).toBe('data=ONEAPP_COPILOT_ENDPOINT%3Dhttps%3A%2F%2F192.0.2.10%3A8443%2Fv1%0AREADY%3DYES&type=1');
    expect(put!.headers).toMatchObject({
      'x-onegate-token': vm.token,
      'x-onegate-vmid': '7',
      'content-type': 'application/x-www-form-urlencoded',
      'content-length': String(put!.body.length),
    });
    expect(vm.userTemplate).toEqual(data);
    expect(lines).toEqual(['info published to OneGate (VM 7): ONEAPP_COPILOT_ENDPOINT, READY']);
  });

  it('type 2 erases one attribute; erasing an absent one is refused at once (500 attribute not found)', async () => {
    const og = await double();
    const vm = og.addVm({ userTemplate: { READY: 'YES', KEEP: 'x' } });
    const setup = await oneGateSetup(og.contextOf(vm), { oneEnvFile: noOneEnv });
    if (!setup.configured) throw new Error(setup.missing);
    const client = new OneGateClient(setup.config, { log: captureLog().log, ...FAST });
    expect(await client.eraseVm('READY')).toEqual({ ok: true, value: undefined });
    expect(og.requests[0]!.body).toBe('data=READY&type=2');
    expect(vm.userTemplate).toEqual({ KEEP: 'x' });
    const again = await client.eraseVm('READY');
    expect(again).toMatchObject({ ok: false, status: 500, refused: true });
    expect(og.requests).toHaveLength(2);
  });

  it('GET /vm and GET /service (extended, as `onegate service show --extended`) in the server shapes', async () => {
    const og = await double();
    const lb = og.addVm({ name: 'lb' });
    const a = og.addVm({
      userTemplate: { LOAD: '0.5' },
      nics: [{ NIC_ID: '0', IP: '10.1.0.5', MAC: 'm', NETWORK: 'n' }],
    });
    og.setService({
      id: 12,
      name: 'copilot',
      roles: [
        { name: 'lb', vms: [lb.id] },
        { name: 'inference', vms: [a.id] },
      ],
    });
    const setup = await oneGateSetup(og.contextOf(lb), { oneEnvFile: noOneEnv });
    if (!setup.configured) throw new Error(setup.missing);
    const client = new OneGateClient(setup.config, { log: captureLog().log, ...FAST });
    const me = await client.getVm();
    expect(me.ok && me.value.VM).toMatchObject({ ID: String(lb.id), NAME: 'lb', USER_TEMPLATE: { ROLE_NAME: 'lb' } });
    const service = await client.getService();
    if (!service.ok) throw new Error(service.reason);
    expect(og.requests.at(-1)).toMatchObject({ method: 'GET', path: '/service', body: 'extended=true' });
    const inference = service.value.SERVICE.roles.find((r) => r.name === 'inference')!;
    expect(inference.cardinality).toBe(1);
    expect(inference.nodes[0]!.vm_info!.VM.USER_TEMPLATE).toMatchObject({ LOAD: '0.5', SERVICE_ID: '12' });
    expect(nodeNics(inference.nodes[0]!).map((n) => n.IP)).toEqual(['10.1.0.5']);
    // scale-in as /service shows it
    og.removeFromService(a.id);
    const after = await client.getService();
    expect(after.ok && after.value.SERVICE.roles[1]!.nodes).toEqual([]);
  });

  it("the double is faithful: without `extended`, vm_info is OneFlow's stored VM_INFO keys only", async () => {
    const og = await double();
    const vm = og.addVm({ userTemplate: { LOAD: '1' } });
    og.setService({ id: 3, roles: [{ name: 'inference', vms: [vm.id] }] });
    const res = await fetch(`${og.endpoint}/service`, {
      headers: { 'X-ONEGATE-TOKEN': vm.token, 'X-ONEGATE-VMID': String(vm.id) },
    });
    const body = (await res.json()) as { SERVICE: { roles: { nodes: { vm_info: { VM: object } }[] }[] } };
    expect(Object.keys(body.SERVICE.roles[0]!.nodes[0]!.vm_info.VM).sort()).toEqual(
      ['GID', 'GNAME', 'ID', 'NAME', 'UID', 'UNAME'].sort(),
    );
  });
});

describe('retries, refusals, absence: one line, never a throw', () => {
  it('retries a 5xx and a dropped connection, then succeeds', async () => {
    const og = await double();
    const vm = og.addVm();
    og.failNext({ status: 503 }, 'drop');
    const { log } = captureLog();
    const result = await publishToOneGate(
      { READY: 'YES' },
      { env: og.contextOf(vm), log, oneEnvFile: noOneEnv, ...FAST },
    );
    expect(result.published).toBe(true);
    expect(og.requests.map((r) => r.status)).toEqual([503, 0, 200]);
    expect(new Set(og.requests.map((r) => r.body))).toEqual(new Set(['data=READY%3DYES&type=1']));
  });

  it('retries while the connection is refused, then succeeds once OneGate listens', async () => {
    const port = await freePort();
    const { log, lines } = captureLog();
    const env = { ONEGATE_ENDPOINT: `http://127.0.0.1:${port}`, VMID: '42', ONEGATE_TOKEN: 'tok-42' };
    const pending = publishToOneGate({ READY: 'YES' }, { env, log, oneEnvFile: noOneEnv, attempts: 8, backoffMs: 100 });
    while (!lines.some((l) => /attempt 1\/8 failed: .*ECONNREFUSED/.test(l)))
      await new Promise((r) => setTimeout(r, 20));
    const og = await double({ port });
    const vm = og.addVm({ id: 42, token: 'tok-42' });
    expect(await pending).toEqual({ published: true, keys: ['READY'] });
    expect(vm.userTemplate).toEqual({ READY: 'YES' });
    expect(og.requests).toHaveLength(1);
  });

  it('gives up after the bounded attempts with one warning', async () => {
    const og = await double();
    const vm = og.addVm();
    og.failNext({ status: 503 }, { status: 502 }, { status: 500 });
    const { log, lines } = captureLog();
    const result = await publishToOneGate(
      { READY: 'YES' },
      { env: og.contextOf(vm), log, oneEnvFile: noOneEnv, ...FAST },
    );
    expect(result).toEqual({ published: false, reason: 'PUT /vm failed after 3 attempts: 500 Internal server error' });
    expect(og.requests).toHaveLength(3);
    expect(lines.filter((l) => !l.startsWith('debug'))).toEqual([
      `warn OneGate at ${og.endpoint}: PUT /vm failed after 3 attempts: 500 Internal server error; ` +
        'nothing published (the VM serves anyway)',
    ]);
  });

  it('401 (a token that is not this VM’s) and 404: skipped at once, the status in one warning', async () => {
    const og = await double();
    const vm = og.addVm({ id: 9 });
    const { log, lines } = captureLog();
    const env = { ...og.contextOf(vm), ONEGATE_TOKEN: 'not-the-token' };
    const r401 = await publishToOneGate({ READY: 'YES' }, { env, log, oneEnvFile: noOneEnv, ...FAST });
    expect(r401).toEqual({ published: false, reason: 'PUT /vm refused: 401 Not authorized' });
    og.failNext({ status: 404, body: 'Error getting virtual machine [9].' });
    const r404 = await publishToOneGate(
      { READY: 'YES' },
      { env: og.contextOf(vm), log, oneEnvFile: noOneEnv, ...FAST },
    );
    expect(r404).toMatchObject({ published: false, reason: 'PUT /vm refused: 404 Error getting virtual machine [9].' });
    expect(og.requests.map((r) => r.status)).toEqual([401, 404]);
    expect(vm.userTemplate).toEqual({});
    expect(lines).toEqual([
      `warn OneGate at ${og.endpoint}: PUT /vm refused: 401 Not authorized (the VM token does not match this VM); ` +
        'nothing published (the VM serves anyway)',
      `warn OneGate at ${og.endpoint}: PUT /vm refused: 404 Error getting virtual machine [9].; ` +
        'nothing published (the VM serves anyway)',
    ]);
  });

  it('not configured: one line naming what is missing, no request', async () => {
    const og = await double();
    const vm = og.addVm();
    const cases: [Record<string, string>, RegExp][] = [
      [{}, /no ONEGATE_ENDPOINT in the context \(.*TOKEN="YES"\)/],
      [{ ONEGATE_ENDPOINT: og.endpoint }, /no VMID in the context/],
      [{ ONEGATE_ENDPOINT: og.endpoint, VMID: String(vm.id) }, new RegExp(`no OneGate token .*${noOneEnv}`)],
    ];
    for (const [env, why] of cases) {
      const { log, lines } = captureLog();
      const result = await publishToOneGate({ READY: 'YES' }, { env, log, oneEnvFile: noOneEnv, ...FAST });
      expect(result.published).toBe(false);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^info OneGate not configured: /);
      expect(lines[0]).toMatch(why);
    }
    expect(og.requests).toEqual([]);
  });

  it("finds the token where one-context leaves it: the CD's token.txt (MOUNT_DIR), then one_env", async () => {
    const og = await double();
    const vm = og.addVm();
    const dir = await mkdtemp(path.join(tmpdir(), 'onegate-token-'));
    await mkdir(path.join(dir, 'cd'));
    await writeFile(path.join(dir, 'cd/token.txt'), `${vm.token}\n`);
    await writeFile(path.join(dir, 'one_env'), `export TOKENTXT="${vm.token}"\nexport VMID="${vm.id}"\n`);
    const base = { ONEGATE_ENDPOINT: og.endpoint, VMID: String(vm.id) };
    const fromCd = await oneGateSetup({ ...base, MOUNT_DIR: path.join(dir, 'cd') }, { oneEnvFile: noOneEnv });
    expect(fromCd).toMatchObject({ configured: true, config: { token: vm.token, tokenFrom: `${dir}/cd/token.txt` } });
    const { log } = captureLog();
    const result = await publishToOneGate({ READY: 'YES' }, { env: base, log, oneEnvFile: path.join(dir, 'one_env') });
    expect(result.published).toBe(true);
  });
});

describe('never a key', () => {
  it('a pair holding a registered secret, or named like one, is refused; the key is in no request', async () => {
    const og = await double();
    const vm = og.addVm();
    const apiKey = 'sk-test-0123456789abcdef';
    const { log, lines } = captureLog();
    const data = {
      ONEAPP_COPILOT_ENDPOINT: 'https://192.0.2.10/v1',
      ONEAPP_COPILOT_CURL: `curl -H 'Authorization: Bearer ${apiKey}'`,
      ONEAPP_COPILOT_API_KEY: 'anything',
      'bad key': 'x',
      EMPTY: '',
    };
    const result = await publishToOneGate(data, {
      env: og.contextOf(vm),
      log,
      secrets: [apiKey],
      oneEnvFile: noOneEnv,
      ...FAST,
    });
    expect(result).toEqual({ published: true, keys: ['ONEAPP_COPILOT_ENDPOINT'] });
    for (const r of og.requests) expect(JSON.stringify(r)).not.toContain(apiKey);
    expect(lines.join('\n')).not.toContain(apiKey);
    expect(lines.filter((l) => l.startsWith('warn'))).toHaveLength(4);
    expect(vm.userTemplate).toEqual({ ONEAPP_COPILOT_ENDPOINT: 'https://192.0.2.10/v1' });
  });
});
