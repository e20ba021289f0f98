import { randomBytes, X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import { createLogger, ExitCode, sh, TaskError, writeFileAtomic, type Logger } from '@slm-copilot/task-kit';
import type { ServedCertificate } from './render.js';

/** Validity of the per-VM CA (kept across boots). */
export const CA_VALIDITY_DAYS = 3650;
/** Validity of the leaf: 825 days is the most Apple accepts from a private CA; re-issued on boot when < 30 days remain. */
export const LEAF_VALIDITY_DAYS = 825;
export const RENEW_BEFORE_DAYS = 30;
const DAY = 86_400_000;

const DNS_NAME =
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

// ---------------------------------------------------------------------------------------------
// SANs (pure)

/** Canonical text of an IP: IPv4 as is, IPv6 fully expanded without leading zeros (as Node prints SANs). */
export function canonicalIp(ip: string): string {
  const v = isIP(ip);
  if (v === 4) return ip;
  if (v !== 6) throw new TaskError(`not an IP address: ${JSON.stringify(ip)}`);
  let text = ip.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    text =
      text.slice(0, -v4[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => parseInt(g || '0', 16).toString(16)).join(':');
}

/**
 * The leaf's subject alternative names: the hostname (if any), every IP given, and the loopback
 * names (`localhost`, 127.0.0.1, ::1) so that checks on the VM and SSH tunnels verify too.
 * Returned canonical and sorted, as `DNS:name` / `IP:address`.
 */
export function leafSans(hostname: string | null, ipAddresses: readonly string[]): string[] {
  const out = new Set<string>();
  if (hostname) {
    if (!DNS_NAME.test(hostname)) throw new TaskError(`not a DNS name: ${JSON.stringify(hostname)}`);
    out.add(`DNS:${hostname.toLowerCase()}`);
  }
  out.add('DNS:localhost');
  for (const ip of [...ipAddresses, '127.0.0.1', '::1']) {
    if (ip.includes('%')) continue; // scoped link-local addresses cannot be in a certificate
    out.add(`IP:${canonicalIp(ip)}`);
  }
  return [...out].sort();
}

/** The SANs of a certificate, in the form of {@link leafSans}. */
export function certificateSans(cert: X509Certificate): string[] {
  const text = cert.subjectAltName ?? '';
  const out = new Set<string>();
  for (const part of text.split(/,\s*/)) {
    const m = /^(DNS|IP Address):(.*)$/.exec(part.trim());
    if (!m) continue;
    out.add(m[1] === 'DNS' ? `DNS:${m[2]!.toLowerCase()}` : `IP:${canonicalIp(m[2]!)}`);
  }
  return [...out].sort();
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

// ---------------------------------------------------------------------------------------------
// Reading what is on disk

async function readCert(file: string): Promise<X509Certificate | undefined> {
  try {
    return new X509Certificate(await readFile(file));
  } catch {
    return undefined;
  }
}

async function readKeyMatches(cert: X509Certificate, keyFile: string): Promise<boolean> {
  try {
    return cert.checkPrivateKey(createPrivateKey(await readFile(keyFile)));
  } catch {
    return false;
  }
}

export function daysLeft(cert: X509Certificate, now = new Date()): number {
  return (new Date(cert.validTo).getTime() - now.getTime()) / DAY;
}

/** `AA:BB:…` SHA-256 fingerprint of a PEM certificate file (the first certificate of a chain). */
export async function fingerprintOf(file: string): Promise<string> {
  const cert = await readCert(file);
  if (!cert) throw new TaskError(`cannot read the certificate ${file}`, { exitCode: ExitCode.environment });
  return cert.fingerprint256;
}

// ---------------------------------------------------------------------------------------------
// openssl

async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'slm-tls-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function openssl(args: string[], what: string): Promise<string> {
  const r = await sh({ nothrow: true })`openssl ${args}`;
  if (r.exitCode !== 0) {
    throw new TaskError(`openssl failed to ${what}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`, {
      exitCode: ExitCode.environment,
    });
  }
  return r.stdout;
}

function opensslConfig(cn: string, sans: readonly string[]): string {
  const alt = sans.map((s, i) =>
    s.startsWith('DNS:') ? `DNS.${i + 1} = ${s.slice(4)}` : `IP.${i + 1} = ${s.slice(3)}`,
  );
  return `[req]
distinguished_name = dn
prompt = no
[dn]
O = SLM-Copilot
CN = ${cn}
[ca_ext]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
${sans.length ? 'subjectAltName = @alt\n[alt]\n' + alt.join('\n') : ''}
`;
}

const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

// ---------------------------------------------------------------------------------------------
// Self-signed: a per-VM CA and a leaf

export interface SelfSignedOptions {
  paths: AppliancePaths;
  hostname: string | null;
  /** The VM's addresses (HostFacts.ipAddresses). */
  ipAddresses: readonly string[];
  log?: Logger;
  now?: Date;
}

export interface SelfSignedResult {
  caCreated: boolean;
  leafIssued: boolean;
  /** Why the leaf was (re-)issued or kept. */
  reason: string;
  sans: string[];
  caFingerprint: string;
  leafFingerprint: string;
  leafNotAfter: Date;
  served: ServedCertificate;
}

/**
 * Keeps a per-VM CA (ECDSA P-256, 10 years; key 0600 in the state dir, certificate 0644) and a leaf
 * it signs for the current hostname and IPs. The CA is created once and kept; the leaf is re-issued
 * only when it is missing, broken, not signed by this CA, for other names, or near its end.
 */
export async function ensureSelfSigned(opts: SelfSignedOptions): Promise<SelfSignedResult> {
  const { paths } = opts;
  const log = opts.log ?? createLogger();
  const now = opts.now ?? new Date();
  const sans = leafSans(opts.hostname, opts.ipAddresses);
  // Only the CA key's own directory is made private; the state dir's mode is the lifecycle's.
  await mkdir(path.dirname(paths.tls.caKey), { recursive: true });
  await chmod(path.dirname(paths.tls.caKey), 0o700);
  await mkdir(paths.tls.dir, { recursive: true, mode: 0o755 });

  const existingCa = await readCert(paths.tls.caCert);
  let caCreated = false;
  const caOk =
    existingCa !== undefined &&
    existingCa.ca &&
    (await readKeyMatches(existingCa, paths.tls.caKey)) &&
    daysLeft(existingCa, now) > RENEW_BEFORE_DAYS &&
    existingCa.verify(existingCa.publicKey);
  let ca: X509Certificate;
  if (caOk) ca = existingCa;
  else {
    if (existingCa)
      log.warn(
        'the appliance CA is unusable (expired, key missing or mismatched): creating a new one; clients must trust the new CA',
      );
    const id = randomBytes(4).toString('hex');
    await withTemp(async (dir) => {
      const cnf = path.join(dir, 'ca.cnf');
      await writeFile(cnf, opensslConfig(`SLM-Copilot appliance CA ${id}`, []));
      const [key, crt] = [path.join(dir, 'ca.key'), path.join(dir, 'ca.crt')];
      await openssl(
        [
          'req',
          '-x509',
          '-config',
          cnf,
          '-extensions',
          'ca_ext',
          ...P256,
          '-keyout',
          key,
          '-out',
          crt,
          '-days',
          String(CA_VALIDITY_DAYS),
          '-sha256',
        ],
        'create the appliance CA',
      );
      await writeFileAtomic(paths.tls.caKey, await readFile(key), { mode: 0o600 });
      await writeFileAtomic(paths.tls.caCert, await readFile(crt), { mode: 0o644 });
    });
    ca = (await readCert(paths.tls.caCert))!;
    caCreated = true;
    log.info(`created the appliance CA (SHA-256 ${ca.fingerprint256})`);
  }

  const leaf = await readCert(paths.tls.cert);
  let reason: string | undefined;
  if (caCreated) reason = 'new CA';
  else if (!leaf) reason = 'no certificate';
  else if (!(await readKeyMatches(leaf, paths.tls.key))) reason = 'key missing or mismatched';
  else if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) reason = 'not signed by the appliance CA';
  else if (!sameSet(certificateSans(leaf), sans))
    reason = `names changed (${certificateSans(leaf).join(', ')} -> ${sans.join(', ')})`;
  else if (daysLeft(leaf, now) < RENEW_BEFORE_DAYS) reason = `expires in ${Math.floor(daysLeft(leaf, now))} days`;

  if (reason) {
    await withTemp(async (dir) => {
      const cnf = path.join(dir, 'leaf.cnf');
      const cn = sans.find((s) => s.startsWith('DNS:') && s !== 'DNS:localhost')?.slice(4) ?? 'SLM-Copilot';
      await writeFile(cnf, opensslConfig(cn, sans));
      const [key, csr, crt] = [path.join(dir, 'leaf.key'), path.join(dir, 'leaf.csr'), path.join(dir, 'leaf.crt')];
      await openssl(['req', '-new', '-config', cnf, ...P256, '-keyout', key, '-out', csr], 'create the server key');
      const serial = `0x${randomBytes(16)
        .toString('hex')
        .replace(/^[89a-f]/, '7')}`;
      await openssl(
        [
          'x509',
          '-req',
          '-in',
          csr,
          '-CA',
          paths.tls.caCert,
          '-CAkey',
          paths.tls.caKey,
          '-set_serial',
          serial,
          '-days',
          String(LEAF_VALIDITY_DAYS),
          '-sha256',
          '-extfile',
          cnf,
          '-extensions',
          'leaf_ext',
          '-out',
          crt,
        ],
        'sign the server certificate',
      );
      // Key first: nginx only reads the pair on a (tested) reload, never in between.
      await writeFileAtomic(paths.tls.key, await readFile(key), { mode: 0o600 });
      await writeFileAtomic(paths.tls.cert, await readFile(crt), { mode: 0o644 });
    });
    log.info(`issued the server certificate (${reason}) for ${sans.join(', ')}`);
  }
  const final = (await readCert(paths.tls.cert))!;
  return {
    caCreated,
    leafIssued: reason !== undefined,
    reason: reason ?? 'kept',
    sans,
    caFingerprint: ca.fingerprint256,
    leafFingerprint: final.fingerprint256,
    leafNotAfter: new Date(final.validTo),
    served: { certificate: paths.tls.cert, key: paths.tls.key },
  };
}

// ---------------------------------------------------------------------------------------------
// Custom: the operator's certificate and key

export interface CustomCertificateResult {
  fingerprint: string;
  notAfter: Date;
  subject: string;
  sans: string[];
  warnings: string[];
  served: ServedCertificate;
}

/**
 * Installs the operator's certificate chain and key (ONEAPP_COPILOT_TLS_CERT / _KEY) after checking
 * with openssl that they parse and belong together. A mismatch is an error; nothing is written.
 */
export async function installCustomCertificate(opts: {
  paths: AppliancePaths;
  certificatePem: string;
  privateKeyPem: string;
  now?: Date;
}): Promise<CustomCertificateResult> {
  const { paths } = opts;
  const now = opts.now ?? new Date();
  const fail = (message: string, hint?: string) => new TaskError(message, { exitCode: ExitCode.invalidConfig, hint });
  return withTemp(async (dir) => {
    const [crt, key] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
    await writeFile(crt, opts.certificatePem, { mode: 0o600 });
    await writeFile(key, opts.privateKeyPem, { mode: 0o600 });
    const certPub = await sh({ nothrow: true })`openssl x509 -in ${crt} -noout -pubkey`;
    if (certPub.exitCode !== 0)
      throw fail(
        'ONEAPP_COPILOT_TLS_CERT is not a PEM certificate (openssl cannot read it)',
        'give the base64 of the PEM chain, leaf first',
      );
    const keyPub = await sh({ nothrow: true })`openssl pkey -in ${key} -pubout -passin pass:`;
    if (keyPub.exitCode !== 0)
      throw fail(
        'ONEAPP_COPILOT_TLS_KEY is not an unencrypted PEM private key (openssl cannot read it)',
        'give the base64 of the PEM key, without a passphrase',
      );
    if (certPub.stdout.trim() !== keyPub.stdout.trim()) {
      throw fail(
        'ONEAPP_COPILOT_TLS_CERT and ONEAPP_COPILOT_TLS_KEY do not match: the certificate was not issued for this private key',
        'give the key the certificate was issued for',
      );
    }
    const cert = new X509Certificate(await readFile(crt));
    const warnings: string[] = [];
    const left = daysLeft(cert, now);
    if (left < 0) warnings.push(`the custom certificate expired on ${cert.validTo}`);
    else if (left < RENEW_BEFORE_DAYS)
      warnings.push(`the custom certificate expires in ${Math.floor(left)} days (${cert.validTo})`);
    if (new Date(cert.validFrom).getTime() > now.getTime())
      warnings.push(`the custom certificate is not valid before ${cert.validFrom}`);
    await mkdir(paths.tls.dir, { recursive: true, mode: 0o755 });
    await writeFileAtomic(
      paths.tls.key,
      opts.privateKeyPem.endsWith('\n') ? opts.privateKeyPem : `${opts.privateKeyPem}\n`,
      { mode: 0o600 },
    );
    await writeFileAtomic(
      paths.tls.cert,
      opts.certificatePem.endsWith('\n') ? opts.certificatePem : `${opts.certificatePem}\n`,
      { mode: 0o644 },
    );
    return {
      fingerprint: cert.fingerprint256,
      notAfter: new Date(cert.validTo),
      subject: cert.subject,
      sans: certificateSans(cert),
      warnings,
      served: { certificate: paths.tls.cert, key: paths.tls.key },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Let's Encrypt (or any ACME directory) with certbot --webroot

export interface CertbotDirs {
  configDir: string;
  workDir: string;
  logsDir: string;
}

/** certbot's directories under the appliance prefix (Debian's certbot.timer renews the default ones). */
export function certbotDirs(paths: AppliancePaths): CertbotDirs {
  const p = (...parts: string[]) => path.join(paths.prefix || '/', ...parts);
  return { configDir: p('etc/letsencrypt'), workDir: p('var/lib/letsencrypt'), logsDir: p('var/log/letsencrypt') };
}

export function letsEncryptFiles(dirs: CertbotDirs, hostname: string): ServedCertificate & { renewalConf: string } {
  const live = path.join(dirs.configDir, 'live', hostname);
  return {
    certificate: path.join(live, 'fullchain.pem'),
    key: path.join(live, 'privkey.pem'),
    renewalConf: path.join(dirs.configDir, 'renewal', `${hostname}.conf`),
  };
}

export interface LetsEncryptOptions {
  hostname: string;
  email: string | null;
  acmeDirectory: string;
  /** nginx's ACME webroot (paths.nginx.acmeWebroot), served on port 80. */
  webroot: string;
  dirs: CertbotDirs;
  /** Shell command certbot runs after each renewal (and issuance): reloads nginx. */
  deployHook: string;
  certbot?: string;
  /** Extra environment (tests: REQUESTS_CA_BUNDLE for a private ACME CA). */
  env?: NodeJS.ProcessEnv;
  minValidDays?: number;
  timeoutMs?: number;
  log?: Logger;
  now?: Date;
}

export type LetsEncryptResult =
  | { ok: true; reused: boolean; served: ServedCertificate; fingerprint: string; notAfter: Date; issuer: string }
  | { ok: false; reason: string };

/** A certificate certbot already holds for `hostname`, if it is from this ACME directory and valid long enough. */
export async function currentLetsEncrypt(
  opts: Pick<LetsEncryptOptions, 'hostname' | 'acmeDirectory' | 'dirs' | 'minValidDays' | 'now'>,
): Promise<{ served: ServedCertificate; cert: X509Certificate } | { reason: string }> {
  const files = letsEncryptFiles(opts.dirs, opts.hostname);
  const cert = await readCert(files.certificate);
  if (!cert) return { reason: 'no certificate yet' };
  if (!(await readKeyMatches(cert, files.key))) return { reason: 'the key does not match' };
  if (!certificateSans(cert).includes(`DNS:${opts.hostname.toLowerCase()}`))
    return { reason: `not for ${opts.hostname}` };
  const left = daysLeft(cert, opts.now);
  const min = opts.minValidDays ?? RENEW_BEFORE_DAYS;
  if (left < min) return { reason: `only ${Math.floor(left)} days left` };
  const conf = await readFile(files.renewalConf, 'utf8').catch(() => '');
  const server = /^server\s*=\s*(\S+)\s*$/m.exec(conf)?.[1];
  if (server !== opts.acmeDirectory) return { reason: `issued by another ACME directory (${server ?? 'unknown'})` };
  return { served: { certificate: files.certificate, key: files.key }, cert };
}

/**
 * Gets a certificate with `certbot certonly --webroot` (nginx must already serve the webroot on
 * port 80). A certificate from the same directory with more than `minValidDays` left is reused,
 * not re-requested. Never throws for ACME problems: returns the reason, and the caller keeps
 * serving the self-signed certificate.
 */
export async function obtainLetsEncrypt(opts: LetsEncryptOptions): Promise<LetsEncryptResult> {
  const log = opts.log ?? createLogger();
  const existing = await currentLetsEncrypt(opts);
  if ('served' in existing) {
    log.info(`Let's Encrypt: keeping the certificate for ${opts.hostname} (valid until ${existing.cert.validTo})`);
    return {
      ok: true,
      reused: true,
      served: existing.served,
      fingerprint: existing.cert.fingerprint256,
      notAfter: new Date(existing.cert.validTo),
      issuer: existing.cert.issuer,
    };
  }
  if (!DNS_NAME.test(opts.hostname)) return { ok: false, reason: `not a DNS name: ${JSON.stringify(opts.hostname)}` };
  const blocked = await unreachableByWorkers(opts.webroot);
  if (blocked) {
    const reason = `nginx's workers cannot read the ACME webroot ${opts.webroot}: ${blocked} is mode ${(await stat(blocked)).mode.toString(8).slice(-4)} (others need +x)`;
    log.warn(`Let's Encrypt: ${reason}; keeping the self-signed certificate`);
    return { ok: false, reason };
  }
  log.info(
    `Let's Encrypt: requesting a certificate for ${opts.hostname} from ${opts.acmeDirectory} (${existing.reason})`,
  );
  await mkdir(opts.webroot, { recursive: true, mode: 0o755 });
  for (const d of [opts.dirs.configDir, opts.dirs.workDir, opts.dirs.logsDir])
    await mkdir(d, { recursive: true, mode: 0o755 });
  const args = [
    'certonly',
    '--webroot',
    '-w',
    opts.webroot,
    '-d',
    opts.hostname,
    '--cert-name',
    opts.hostname,
    '--server',
    opts.acmeDirectory,
    '--agree-tos',
    '--non-interactive',
    '--force-renewal',
    '--config-dir',
    opts.dirs.configDir,
    '--work-dir',
    opts.dirs.workDir,
    '--logs-dir',
    opts.dirs.logsDir,
    '--deploy-hook',
    opts.deployHook,
    ...(opts.email ? ['-m', opts.email, '--no-eff-email'] : ['--register-unsafely-without-email']),
  ];
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const proc = sh({
    nothrow: true,
    env: { ...process.env, ...opts.env },
    timeout: timeoutMs,
    timeoutSignal: 'SIGKILL',
  })`${opts.certbot ?? 'certbot'} ${args}`;
  const r = await proc;
  if (r.exitCode !== 0) {
    const text = `${r.stderr}\n${r.stdout}`;
    const lines = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/^(Saving debug log|Ask for help|See the logfile|- - -)/.test(l));
    const reason = r.signal
      ? `certbot did not finish within ${Math.round(timeoutMs / 1000)} s`
      : `certbot failed (exit ${r.exitCode}): ${lines.slice(-6).join(' / ')}`;
    log.warn(`Let's Encrypt: ${reason}; keeping the self-signed certificate`);
    return { ok: false, reason };
  }
  const got = await currentLetsEncrypt({ ...opts, minValidDays: 0 });
  if (!('served' in got))
    return { ok: false, reason: `certbot succeeded but the certificate is unusable: ${got.reason}` };
  log.info(
    `Let's Encrypt: certificate for ${opts.hostname} issued by ${got.cert.issuer.replace(/\n/g, ', ')}, valid until ${got.cert.validTo}`,
  );
  return {
    ok: true,
    reused: false,
    served: got.served,
    fingerprint: got.cert.fingerprint256,
    notAfter: new Date(got.cert.validTo),
    issuer: got.cert.issuer,
  };
}

/**
 * The first existing ancestor of `dir` (or `dir` itself) that an unprivileged nginx worker cannot
 * traverse (no o+x), or undefined when the path is reachable. Missing directories are created 0755 later.
 */
export async function unreachableByWorkers(dir: string): Promise<string | undefined> {
  const parts: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    parts.unshift(d);
    if (d === path.dirname(d)) break;
  }
  for (const d of parts) {
    const st = await stat(d).catch(() => undefined);
    if (!st) return undefined;
    if ((st.mode & 0o001) === 0) return d;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// What to serve now (before nginx starts): always something that exists.

export type ServedKind = 'self-signed' | 'custom' | 'letsencrypt';

export interface TlsPlan {
  kind: ServedKind;
  served: ServedCertificate;
  fingerprint: string;
  /** Self-signed (also the fallback in Let's Encrypt mode). */
  selfSigned?: SelfSignedResult;
  custom?: CustomCertificateResult;
  /** Let's Encrypt mode without a usable certificate yet: call obtainLetsEncrypt once nginx serves port 80. */
  letsEncryptPending: boolean;
  letsEncryptReason?: string;
}

/**
 * Makes sure a certificate exists before nginx starts, for every mode: custom installs the operator's
 * pair; self-signed keeps the CA and (re-)issues the leaf; Let's Encrypt serves its certificate when a
 * valid one is already there, else the self-signed leaf until {@link obtainLetsEncrypt} succeeds.
 */
export async function prepareTls(
  config: Config,
  opts: { paths: AppliancePaths; ipAddresses: readonly string[]; certbotDirs?: CertbotDirs; log?: Logger; now?: Date },
): Promise<TlsPlan> {
  const { paths } = opts;
  if (config.tls.mode === 'custom') {
    if (!config.tls.certificatePem || !config.tls.privateKeyPem) {
      throw new TaskError('TLS mode custom needs ONEAPP_COPILOT_TLS_CERT and ONEAPP_COPILOT_TLS_KEY', {
        exitCode: ExitCode.invalidConfig,
      });
    }
    const custom = await installCustomCertificate({
      paths,
      certificatePem: config.tls.certificatePem,
      privateKeyPem: config.tls.privateKeyPem,
      now: opts.now,
    });
    for (const w of custom.warnings) (opts.log ?? createLogger()).warn(w);
    return {
      kind: 'custom',
      served: custom.served,
      fingerprint: custom.fingerprint,
      custom,
      letsEncryptPending: false,
    };
  }
  const selfSigned = await ensureSelfSigned({
    paths,
    hostname: config.hostname,
    ipAddresses: opts.ipAddresses,
    log: opts.log,
    now: opts.now,
  });
  if (config.tls.mode === 'letsencrypt' && config.hostname) {
    const existing = await currentLetsEncrypt({
      hostname: config.hostname,
      acmeDirectory: config.tls.acmeDirectory,
      dirs: opts.certbotDirs ?? certbotDirs(paths),
      now: opts.now,
    });
    if ('served' in existing) {
      return {
        kind: 'letsencrypt',
        served: existing.served,
        fingerprint: existing.cert.fingerprint256,
        selfSigned,
        letsEncryptPending: false,
      };
    }
    return {
      kind: 'self-signed',
      served: selfSigned.served,
      fingerprint: selfSigned.leafFingerprint,
      selfSigned,
      letsEncryptPending: true,
      letsEncryptReason: existing.reason,
    };
  }
  return {
    kind: 'self-signed',
    served: selfSigned.served,
    fingerprint: selfSigned.leafFingerprint,
    selfSigned,
    letsEncryptPending: false,
  };
}

/** True when both files of a served pair exist (nginx refuses to start otherwise). */
export async function servedFilesExist(served: ServedCertificate): Promise<boolean> {
  try {
    await stat(served.certificate);
    await stat(served.key);
    return true;
  } catch {
    return false;
  }
}
