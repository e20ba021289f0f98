import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { connect } from 'node:tls';
import path from 'node:path';
import { appliancePaths, parseContext } from '@slm-copilot/context-schema';
import { TaskError } from '@slm-copilot/task-kit';
import { afterAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { httpsGet, lookupTo } from '../test-support/client.js';
import { startGateway, tempRoot, type Gateway, removeTempRoots } from '../test-support/nginx.js';
import {
  canonicalIp,
  ensureSelfSigned,
  installCustomCertificate,
  leafSans,
  prepareTls,
  unreachableByWorkers,
} from './tls.js';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';

const mode = async (f: string) => ((await stat(f)).mode & 0o777).toString(8);
const gateways: Gateway[] = [];
afterAll(async () => {
  for (const g of gateways) await g.stop();
  removeTempRoots();
}, 30_000);

describe('SANs', () => {
  it('hostname, every IP and the loopback names, canonical and sorted', () => {
    expect(leafSans('Copilot.Example.com', ['10.0.0.5', '2001:db8::5', 'fe80::1%eth0', '10.0.0.5'])).toEqual([
      'DNS:copilot.example.com',
      'DNS:localhost',
      'IP:0:0:0:0:0:0:0:1',
      'IP:10.0.0.5',
      'IP:127.0.0.1',
      'IP:2001:db8:0:0:0:0:0:5',
    ]);
    expect(leafSans(null, [])).toEqual(['DNS:localhost', 'IP:0:0:0:0:0:0:0:1', 'IP:127.0.0.1']);
    expect(canonicalIp('::ffff:10.1.2.3')).toBe('0:0:0:0:0:ffff:a01:203');
    expect(() => leafSans('bad name;', [])).toThrow(/not a DNS name/);
    expect(() => leafSans(null, ['10.0.0.300'])).toThrow(/not an IP/);
  });
});

describe('per-VM CA and leaf (real openssl)', () => {
  it("under the stages' umask 0077, nginx's workers can still read the served CA (its download)", async () => {
    const paths = appliancePaths(await tempRoot('tls-umask'));
    const previous = process.umask(0o077);
    try {
      await ensureSelfSigned({ paths, hostname: 'copilot.example.test', ipAddresses: [], log: quietLog });
    } finally {
      process.umask(previous);
    }
    expect([await mode(paths.tls.dir), await mode(paths.tls.caCert)]).toEqual(['755', '644']);
  });

  it('keeps the CA across runs; a changed IP set re-issues only the leaf', async () => {
    const root = await tempRoot('tls');
    const paths = appliancePaths(root);
    const first = await ensureSelfSigned({
      paths,
      hostname: 'copilot.example.test',
      ipAddresses: ['10.0.0.5'],
      log: quietLog,
    });
    expect([first.caCreated, first.leafIssued, first.reason]).toEqual([true, true, 'new CA']);
    expect([
      await mode(paths.tls.caKey),
      await mode(paths.tls.caCert),
      await mode(paths.tls.key),
      await mode(paths.tls.cert),
    ]).toEqual(['600', '644', '600', '644']);
    expect(await mode(path.dirname(paths.tls.caKey))).toBe('700');
    expect(await mode(paths.tls.dir)).toBe('755');
    const caPem = await readFile(paths.tls.caCert, 'utf8');
    const caKey = await readFile(paths.tls.caKey, 'utf8');
    const leafPem = await readFile(paths.tls.cert, 'utf8');

    // second boot, same names: nothing changes, byte for byte
    const second = await ensureSelfSigned({
      paths,
      hostname: 'copilot.example.test',
      ipAddresses: ['10.0.0.5'],
      log: quietLog,
    });
    expect([second.caCreated, second.leafIssued, second.reason]).toEqual([false, false, 'kept']);
    expect(second.caFingerprint).toBe(first.caFingerprint);
    expect(second.leafFingerprint).toBe(first.leafFingerprint);
    expect(await readFile(paths.tls.caCert, 'utf8')).toBe(caPem);
    expect(await readFile(paths.tls.cert, 'utf8')).toBe(leafPem);

    // the VM got another address: only the leaf is re-issued, by the same CA
    const third = await ensureSelfSigned({
      paths,
      hostname: 'copilot.example.test',
      ipAddresses: ['10.0.0.6', '2001:db8::6'],
      log: quietLog,
    });
    expect([third.caCreated, third.leafIssued]).toEqual([false, true]);
    expect(third.reason).toMatch(/^names changed/);
    expect(third.caFingerprint).toBe(first.caFingerprint);
    expect(third.leafFingerprint).not.toBe(first.leafFingerprint);
    expect(await readFile(paths.tls.caCert, 'utf8')).toBe(caPem);
    expect(await readFile(paths.tls.caKey, 'utf8')).toBe(caKey);
    const leaf = new X509Certificate(await readFile(paths.tls.cert));
    expect(leaf.subjectAltName?.split(', ')).toEqual([
      'DNS:copilot.example.test',
      'DNS:localhost',
      'IP Address:0:0:0:0:0:0:0:1',
      'IP Address:10.0.0.6',
      'IP Address:127.0.0.1',
      'IP Address:2001:DB8:0:0:0:0:0:6',
    ]);
    const verify = await $({
      quiet: true,
      nothrow: true,
    })`openssl verify -CAfile ${paths.tls.caCert} ${paths.tls.cert}`;
    expect(verify.stdout.trim()).toBe(`${paths.tls.cert}: OK`);
    // the fingerprint is openssl's SHA-256 fingerprint
    const fp = await $({ quiet: true })`openssl x509 -in ${paths.tls.cert} -noout -fingerprint -sha256`;
    expect(fp.stdout.trim()).toBe(`sha256 Fingerprint=${third.leafFingerprint}`);
    const ca = new X509Certificate(caPem);
    expect(ca.ca).toBe(true);
    expect(Math.round((new Date(ca.validTo).getTime() - new Date(ca.validFrom).getTime()) / 86_400_000)).toBe(3650);
    expect(ca.subject).toMatch(/^O=SLM-Copilot\nCN=SLM-Copilot appliance CA [0-9a-f]{8}$/);
  }, 60_000);

  it('re-issues a leaf not signed by the CA, or one close to its end; keeps the CA', async () => {
    const root = await tempRoot('tls');
    const paths = appliancePaths(root);
    const first = await ensureSelfSigned({ paths, hostname: null, ipAddresses: [], log: quietLog });
    await $({
      quiet: true,
    })`openssl req -x509 ${[
      ...['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', paths.tls.key, '-out', paths.tls.cert, '-days', '30', '-subj', '/CN=intruder'],
      ...['-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1'],
    ]}`;
    const again = await ensureSelfSigned({ paths, hostname: null, ipAddresses: [], log: quietLog });
    expect([again.caCreated, again.leafIssued, again.reason]).toEqual([false, true, 'not signed by the appliance CA']);
    const later = await ensureSelfSigned({
      paths,
      hostname: null,
      ipAddresses: [],
      log: quietLog,
      now: new Date(Date.now() + 810 * 86_400_000),
    });
    expect(later.reason).toMatch(/^expires in 1[45] days$/);
    expect(later.caFingerprint).toBe(first.caFingerprint);
  }, 60_000);

  it('is served by nginx: the CA verifies it for names in the SANs, and other names are refused', async () => {
    const root = await tempRoot('tls-serve');
    const paths = appliancePaths(root);
    const ss = await ensureSelfSigned({
      paths,
      hostname: 'copilot.example.test',
      ipAddresses: ['192.0.2.10'],
      log: quietLog,
    });
    const gw = await startGateway({ root, tls: ss.served, trustFile: paths.tls.caCert });
    gateways.push(gw);
    const ca = await readFile(paths.tls.caCert);
    const url = (host: string) => `https://${host}:${gw.httpsPort}/readyz`;
    expect((await httpsGet(url('copilot.example.test'), { ca, resolveTo: '127.0.0.1' })).status).toBe(503);
    expect((await httpsGet(url('localhost'), { ca })).status).toBe(503);
    expect((await httpsGet(url('127.0.0.1'), { ca })).status).toBe(503);
    await expect(httpsGet(url('other.example.test'), { ca, resolveTo: '127.0.0.1' })).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
    // without the CA the certificate is not trusted
    await expect(
      httpsGet(url('localhost'), { ca: await readFile(path.join(root, 'etc/slm-copilot/tls/server.crt')) }),
    ).rejects.toThrow();
    // protocol versions and HTTP/2
    const s = (flags: string[]) =>
      $({
        quiet: true,
        nothrow: true,
        timeout: '15s',
      })`openssl s_client -connect 127.0.0.1:${gw.httpsPort} -servername localhost ${flags} </dev/null`;
    expect((await s(['-tls1_1'])).exitCode).not.toBe(0);
    const tls12 = await s(['-tls1_2', '-CAfile', paths.tls.caCert, '-alpn', 'h2']);
    expect(tls12.stdout).toMatch(/Protocol *: TLSv1\.2/);
    expect(tls12.stdout).toContain('ALPN protocol: h2');
    expect(tls12.stdout).toContain('Verify return code: 0 (ok)');
    expect((await s(['-tls1_3'])).stdout).toMatch(/TLSv1\.3/);
    // the served certificate is the leaf (fingerprint as reported)
    const peer = await new Promise<string>((resolve, reject) => {
      const sock = connect(
        {
          port: gw.httpsPort,
          host: '127.0.0.1',
          servername: 'copilot.example.test',
          ca,
          lookup: lookupTo('127.0.0.1'),
        },
        () => {
          resolve(sock.getPeerX509Certificate()!.fingerprint256);
          sock.destroy();
        },
      );
      sock.on('error', reject);
    });
    expect(peer).toBe(ss.leafFingerprint);
  }, 60_000);
});

describe('custom certificate', () => {
  async function pair(dir: string, name: string) {
    const key = path.join(dir, `${name}.key`);
    const crt = path.join(dir, `${name}.crt`);
    await $({
      quiet: true,
    })`openssl req -x509 -newkey rsa:2048 -nodes -keyout ${key} -out ${crt} -days 90 ${[
      ...['-subj', `/CN=${name}.example.com`, '-addext', `subjectAltName=DNS:${name}.example.com`],
    ]}`;
    return { key: await readFile(key, 'utf8'), crt: await readFile(crt, 'utf8') };
  }

  it('installs a matching pair and refuses a mismatch with a clear error, writing nothing', async () => {
    const root = await tempRoot('custom');
    const paths = appliancePaths(root);
    const a = await pair(root, 'a');
    const b = await pair(root, 'b');
    const ok = await installCustomCertificate({ paths, certificatePem: a.crt, privateKeyPem: a.key });
    expect(ok.sans).toEqual(['DNS:a.example.com']);
    expect(ok.warnings).toEqual([]);
    expect(ok.fingerprint).toBe(new X509Certificate(a.crt).fingerprint256);
    expect(await readFile(paths.tls.cert, 'utf8')).toBe(a.crt);
    expect(await mode(paths.tls.key)).toBe('600');

    const err = await installCustomCertificate({ paths, certificatePem: b.crt, privateKeyPem: a.key }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).message).toBe(
      'ONEAPP_COPILOT_TLS_CERT and ONEAPP_COPILOT_TLS_KEY do not match: ' +
        'the certificate was not issued for this private key',
    );
    expect((err as TaskError).exitCode).toBe(3);
    expect(await readFile(paths.tls.cert, 'utf8')).toBe(a.crt); // untouched
    await expect(
      installCustomCertificate({ paths, certificatePem: 'not a certificate', privateKeyPem: a.key }),
    ).rejects.toThrow(/TLS_CERT is not a PEM certificate/);
    await expect(installCustomCertificate({ paths, certificatePem: a.crt, privateKeyPem: 'nope' })).rejects.toThrow(
      /TLS_KEY is not an unencrypted PEM private key/,
    );
  }, 60_000);

  it('prepareTls: custom installs the pair; letsencrypt with no certificate serves the self-signed leaf', async () => {
    const root = await tempRoot('plan');
    const paths = appliancePaths(root);
    const a = await pair(root, 'a');
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const custom = parseContext({
      ONEAPP_COPILOT_TLS_MODE: 'custom',
      ONEAPP_COPILOT_TLS_CERT: b64(a.crt),
      ONEAPP_COPILOT_TLS_KEY: b64(a.key),
    });
    const planC = await prepareTls(custom, { paths, ipAddresses: [], log: quietLog });
    expect([planC.kind, planC.letsEncryptPending, planC.served.certificate]).toEqual(['custom', false, paths.tls.cert]);
    const le = parseContext({ ONEAPP_COPILOT_HOSTNAME: 'copilot.example.test' });
    expect(le.tls.mode).toBe('letsencrypt');
    const planL = await prepareTls(le, { paths, ipAddresses: ['10.0.0.5'], log: quietLog });
    expect(planL.kind).toBe('self-signed');
    expect(planL.letsEncryptPending).toBe(true);
    expect(planL.letsEncryptReason).toBe('no certificate yet');
    // the custom pair at the served paths is replaced by a leaf of the new CA
    expect(planL.selfSigned?.reason).toBe('new CA');
  }, 60_000);
});

describe('ACME webroot reachability', () => {
  it('names the directory nginx workers cannot traverse', async () => {
    const root = await tempRoot('webroot');
    const paths = appliancePaths(root);
    const { mkdir, chmod } = await import('node:fs/promises');
    await mkdir(paths.nginx.acmeWebroot, { recursive: true });
    expect(await unreachableByWorkers(paths.nginx.acmeWebroot)).toBeUndefined();
    // the webroot lives outside the 0700 state dir, so locking the state dir down does not hide it
    await mkdir(paths.stateDir, { recursive: true });
    await chmod(paths.stateDir, 0o700);
    expect(await unreachableByWorkers(paths.nginx.acmeWebroot)).toBeUndefined();
    const parent = path.dirname(paths.nginx.acmeWebroot);
    await chmod(parent, 0o700);
    expect(await unreachableByWorkers(paths.nginx.acmeWebroot)).toBe(parent);
    await chmod(parent, 0o755);
  });
});
