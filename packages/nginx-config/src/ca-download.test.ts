// The per-VM CA served without a key at CA_DOWNLOAD_PATH, on the REAL nginx with a leaf signed by that
// CA (ensureSelfSigned): what `curl -k` downloads is the CA file byte for byte, its fingerprint is the
// one the report shows, and nothing else becomes reachable without a key. Custom mode serves no CA.
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';
import { httpsGet } from '../test-support/client.js';
import { mutation } from '../test-support/mutate.js';
import { startGateway, tempRoot, testPaths, removeTempRoots, type Gateway } from '../test-support/nginx.js';
import { startUpstreamDouble, type UpstreamDouble } from '../test-support/upstream-double.js';
import { CA_DOWNLOAD_PATH } from './render.js';
import { ensureSelfSigned } from './tls.js';

const HOOK = 60_000;
const running: Array<{ gw: Gateway; up: UpstreamDouble }> = [];

/** A gateway serving a leaf of a fresh per-VM CA under its own root; returns it with the CA's PEM. */
async function selfSigned(env: Record<string, string> = {}, mutate?: (f: Gateway['files']) => Gateway['files']) {
  const up = await startUpstreamDouble();
  const root = await tempRoot('ca');
  const paths = testPaths(root, up.port);
  const ss = await ensureSelfSigned({ paths, hostname: null, ipAddresses: [], log: quietLog });
  const gw = await startGateway({
    root,
    enginePort: up.port,
    tls: ss.served,
    trustFile: paths.tls.caCert,
    env,
    ...(mutate ? { mutate } : {}),
  });
  running.push({ gw, up });
  return { gw, up, caPem: await readFile(paths.tls.caCert, 'utf8'), caFingerprint: ss.caFingerprint };
}

afterAll(async () => {
  for (const r of running) {
    await r.gw.stop();
    await r.up.close();
  }
  removeTempRoots();
}, HOOK);

describe('the per-VM CA over HTTPS (self-signed mode)', () => {
  let app: Awaited<ReturnType<typeof selfSigned>>;
  beforeAll(async () => {
    app = await selfSigned();
  }, HOOK);

  it('`curl -k` downloads the CA file byte for byte, without a key, with the CA fingerprint', async () => {
    const out = path.join(app.gw.root, 'downloaded-ca.pem');
    await $({ quiet: true })`curl -k -sS --fail ${app.gw.baseUrl}${CA_DOWNLOAD_PATH} -o ${out}`;
    const downloaded = await readFile(out, 'utf8');
    expect(downloaded).toBe(app.caPem);
    expect(new X509Certificate(downloaded).fingerprint256).toBe(app.caFingerprint);
    const fp = await $({ quiet: true })`openssl x509 -fingerprint -sha256 -noout -in ${out}`;
    expect(fp.stdout.trim().split('=')[1]).toBe(app.caFingerprint);
  });

  it('is served as PEM with the gateway headers, not cached, and never proxied to the engine', async () => {
    const before = app.up.requests.length;
    const r = await httpsGet(`${app.gw.baseUrl}${CA_DOWNLOAD_PATH}`, { ca: app.caPem });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/x-pem-file');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(app.up.requests.length).toBe(before);
    // The access log names no key for it (none was sent) and logs the path.
    expect(await app.gw.accessLog()).toContain(`"key":"","method":"GET","path":"${CA_DOWNLOAD_PATH}"`);
  });

  it('opens nothing else: neighbours, suffixes and dot-segments still need a key', async () => {
    const keyless = ['/slm-copilot-ca.pemx', '/slm-copilot-ca.pem/', '/slm-copilot-ca.pem/../v1/models', '/ca.key'];
    for (const p of keyless) {
      const r = await httpsGet(`${app.gw.baseUrl}${p}`, { ca: app.caPem });
      expect(r.status, p).toBe(401);
    }
  });
});

describe('mutation and custom mode', () => {
  it('without the location the download needs a key (401): the test above can fail', async () => {
    const block = / {4}# The per-VM CA[^\n]*\n {4}location = \/slm-copilot-ca\.pem \{\n(?: {8}[^\n]*\n)* {4}\}\n/;
    const app = await selfSigned({}, mutation('slm-copilot.conf', block, ''));
    const r = await httpsGet(`${app.gw.baseUrl}${CA_DOWNLOAD_PATH}`, { ca: app.caPem });
    expect(r.status).toBe(401);
  });

  it('custom mode: a JSON 404 that says why, even when a CA file from an earlier boot is on disk', async () => {
    const root = await tempRoot('ca-custom');
    const dir = path.join(root, 'operator');
    await mkdir(dir, { recursive: true });
    const [crt, key] = [path.join(dir, 'op.crt'), path.join(dir, 'op.key')];
    const subj = ['-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost'];
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    await $({ quiet: true })`openssl req -x509 ${ec} -keyout ${key} -out ${crt} -days 2 ${subj}`;
    const [crtPem, keyPem] = [await readFile(crt, 'utf8'), await readFile(key, 'utf8')];
    const up = await startUpstreamDouble();
    const paths = testPaths(root, up.port);
    await mkdir(path.dirname(paths.tls.caCert), { recursive: true });
    await writeFile(paths.tls.caCert, '-----BEGIN CERTIFICATE-----\nstale\n-----END CERTIFICATE-----\n');
    const gw = await startGateway({
      root,
      enginePort: up.port,
      tls: { certificate: crt, key },
      env: {
        ONEAPP_COPILOT_TLS_MODE: 'custom',
        ONEAPP_COPILOT_TLS_CERT: Buffer.from(crtPem).toString('base64'),
        ONEAPP_COPILOT_TLS_KEY: Buffer.from(keyPem).toString('base64'),
      },
    });
    running.push({ gw, up });
    const r = await httpsGet(`${gw.baseUrl}${CA_DOWNLOAD_PATH}`, { ca: crtPem });
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body).error).toMatchObject({ code: 'no_appliance_ca', type: 'invalid_request_error' });
    expect(r.body).not.toContain('stale');
  });
});
