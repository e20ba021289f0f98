// Let's Encrypt against Pebble (Debian's ACME test CA): real certbot --webroot, real nginx serving
// the http-01 challenge on its plain-HTTP port, then serving the issued certificate.
import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { connect } from 'node:tls';
import path from 'node:path';
import { appliancePaths, parseContext } from '@slm-copilot/context-schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { installGateway } from './install.js';
import { renderGateway, type ServedCertificate } from './render.js';
import { lookupTo } from '../test-support/client.js';
import { startGateway, tempRoot, type Gateway, removeTempRoots } from '../test-support/nginx.js';
import { startPebble, type Pebble } from '../test-support/pebble.js';
import { waitFor } from '../test-support/poll.js';
import { certbotDirs, letsEncryptRequest, obtainLetsEncrypt, prepareTls, type CertbotDirs } from './tls.js';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';

const HOST = 'copilot.example.test';

let root: string;
let gw: Gateway;
let pebble: Pebble;
let dirs: CertbotDirs;
let deployHook: string;
let hookMarker: string;

beforeAll(async () => {
  root = await tempRoot('acme');
  const paths = appliancePaths(root);
  const config = parseContext({ ONEAPP_COPILOT_HOSTNAME: HOST });
  dirs = certbotDirs(paths);
  const plan = await prepareTls(config, { paths, ipAddresses: [], certbotDirs: dirs, log: quietLog });
  expect(plan.letsEncryptPending).toBe(true);
  // nginx starts on the self-signed leaf: it never waits for (or fails without) the ACME certificate
  gw = await startGateway({
    root,
    tls: plan.served,
    trustFile: paths.tls.caCert,
    env: { ONEAPP_COPILOT_HOSTNAME: HOST },
  });
  pebble = await startPebble({ dir: path.join(root, 'pebble'), httpPort: gw.httpPort });
  hookMarker = path.join(root, 'deploy-hook-ran');
  deployHook = `${gw.reloadCommand.join(' ')} && touch ${hookMarker}`;
}, 120_000);

afterAll(async () => {
  await gw?.stop();
  await pebble?.stop();
  removeTempRoots();
}, 30_000);

async function servedCertificate(): Promise<X509Certificate> {
  const ca = await pebble.issuingRoot();
  return new Promise((resolve, reject) => {
    // verified against Pebble's root, for the name in the request
    const sock = connect(
      { port: gw.httpsPort, host: HOST, servername: HOST, ca, lookup: lookupTo('127.0.0.1') },
      () => {
        resolve(sock.getPeerX509Certificate()!);
        sock.destroy();
      },
    );
    sock.on('error', reject);
  });
}

/** The appliance's request (letsEncryptRequest) for this test's context, pointed at Pebble. */
const obtain = (overrides: Partial<Parameters<typeof obtainLetsEncrypt>[0]> = {}) =>
  obtainLetsEncrypt(
    letsEncryptRequest(
      parseContext({
        ONEAPP_COPILOT_HOSTNAME: HOST,
        ONEAPP_COPILOT_LETSENCRYPT_EMAIL: 'ops@example.test',
        ONEAPP_COPILOT_ACME_DIRECTORY: pebble.directory,
      }),
      gw.paths,
      {
        deployHook,
        env: { REQUESTS_CA_BUNDLE: pebble.caBundle },
        timeoutMs: 120_000,
        log: quietLog,
        ...overrides,
      },
    ),
  );

/** The certificate nginx serves, once it is the one with `fingerprint` (a reload takes effect at its own pace). */
async function servedOnceReloaded(fingerprint: string): Promise<X509Certificate> {
  let served: X509Certificate | undefined;
  await waitFor(`nginx to serve ${fingerprint.slice(0, 11)}…`, async () => {
    served = await servedCertificate();
    return served.fingerprint256 === fingerprint;
  });
  return served!;
}

const install = (served: ServedCertificate) =>
  installGateway(
    renderGateway(gw.config, {
      paths: gw.paths,
      keys: { main: gw.config.apiKey!, extra: [] },
      tls: served,
      httpPort: gw.httpPort,
      listenAddresses: ['127.0.0.1'],
      keyFileOwner: null,
    }),
    { testConfigCommand: gw.testCommand, reload: gw.reloadCommand, log: quietLog },
  );

describe("Let's Encrypt (certbot + Pebble)", () => {
  let first: Awaited<ReturnType<typeof obtain>>;

  it('issues a certificate through the nginx webroot; nginx logged the challenge; then serves it', async () => {
    expect((await servedCertificate().catch((e: Error) => e)) instanceof Error).toBe(true); // self-signed: not Pebble's
    first = await obtain();
    if (!first.ok) throw new Error(`${first.reason}\n${pebble.output()}`);
    expect(first.reused).toBe(false);
    expect(first.issuer).toMatch(/Pebble Intermediate CA/);
    expect(first.served.certificate).toBe(path.join(dirs.configDir, 'live', HOST, 'fullchain.pem'));
    const log = await gw.accessLog();
    expect(log).toMatch(/"path":"\/\.well-known\/acme-challenge\/[A-Za-z0-9_-]+","protocol":"HTTP\/1\.1","status":200/);
    const r = await install(first.served);
    expect(r.reloaded).toBe(true);
    const served = await servedOnceReloaded(first.fingerprint);
    expect(served.issuer).toMatch(/CN=Pebble Intermediate CA/);
    expect(served.subjectAltName).toBe(`DNS:${HOST}`);
  }, 180_000);

  it('does not request again while the certificate is valid (> 30 days left)', async () => {
    if (!first?.ok) throw new Error('needs the first test');
    // certbot replaced by `false`: had a request been made, it would have failed
    const again = await obtain({ certbot: 'false' });
    expect(again).toMatchObject({ ok: true, reused: true, fingerprint: first.fingerprint });
    const requested = await obtain({ certbot: 'false', minValidDays: 10_000 });
    expect(requested).toMatchObject({ ok: false, reason: expect.stringMatching(/^certbot failed \(exit 1\)/) });
    // the plan for the next boot serves it directly
    const plan = await prepareTls(
      parseContext({ ONEAPP_COPILOT_HOSTNAME: HOST, ONEAPP_COPILOT_ACME_DIRECTORY: pebble.directory }),
      {
        paths: gw.paths,
        ipAddresses: [],
        certbotDirs: dirs,
        log: quietLog,
      },
    );
    expect([plan.kind, plan.letsEncryptPending, plan.fingerprint]).toEqual(['letsencrypt', false, first.fingerprint]);
    // another ACME directory (e.g. staging -> production) is a reason to request again
    const other = await prepareTls(parseContext({ ONEAPP_COPILOT_HOSTNAME: HOST }), {
      paths: gw.paths,
      ipAddresses: [],
      certbotDirs: dirs,
      log: quietLog,
    });
    expect(other.letsEncryptPending).toBe(true);
    expect(other.letsEncryptReason).toMatch(/^issued by another ACME directory/);
  }, 60_000);

  it('renewal runs the deploy hook, which reloads nginx: the renewed certificate is served', async () => {
    if (!first?.ok) throw new Error('needs the first test');
    const conf = await readFile(path.join(dirs.configDir, 'renewal', `${HOST}.conf`), 'utf8');
    expect(conf).toContain(`renew_hook = ${deployHook}`);
    await $({
      quiet: true,
      env: { ...process.env, REQUESTS_CA_BUNDLE: pebble.caBundle },
      timeout: '120s',
    })`certbot renew --force-renewal --no-random-sleep-on-renew --non-interactive ${[
      ...['--config-dir', dirs.configDir, '--work-dir', dirs.workDir, '--logs-dir', dirs.logsDir],
    ]}`;
    await stat(hookMarker);
    const renewed = new X509Certificate(await readFile(path.join(dirs.configDir, 'live', HOST, 'fullchain.pem')));
    expect(renewed.fingerprint256).not.toBe(first.fingerprint);
    expect((await servedOnceReloaded(renewed.fingerprint256)).fingerprint256).toBe(renewed.fingerprint256);
  }, 180_000);

  it('on failure returns the reason and leaves the served certificate alone', async () => {
    const before = (await servedCertificate()).fingerprint256;
    // an ACME "directory" that hangs up on every connection (held by this test: no other process can take its port)
    const dead = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    try {
      const directory = `https://127.0.0.1:${(dead.address() as { port: number }).port}/dir`;
      const r = await obtain({ hostname: 'other.example.test', acmeDirectory: directory, timeoutMs: 90_000 });
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(/^certbot failed \(exit 1\): /);
    } finally {
      await new Promise((resolve) => dead.close(resolve));
    }
    expect((await servedCertificate()).fingerprint256).toBe(before);
  }, 120_000);
});
