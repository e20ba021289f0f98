// Self-signed mode: a per-VM CA (kept across boots) and a leaf it signs for the current names.
import { randomBytes, type X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AppliancePaths } from '@slm-copilot/context-schema';
import { createLogger, writeFileAtomic, type Logger } from '@slm-copilot/task-kit';
import type { ServedCertificate } from './gateway-files.js';
import {
  CA_VALIDITY_DAYS,
  certificateSans,
  daysLeft,
  LEAF_VALIDITY_DAYS,
  leafSans,
  openssl,
  readCert,
  readKeyMatches,
  RENEW_BEFORE_DAYS,
  sameSet,
  withTemp,
} from './tls-certs.js';

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

async function usableCa(paths: AppliancePaths, now: Date): Promise<X509Certificate | undefined> {
  const ca = await readCert(paths.tls.caCert);
  if (!ca?.ca || !(await readKeyMatches(ca, paths.tls.caKey))) return undefined;
  return daysLeft(ca, now) > RENEW_BEFORE_DAYS && ca.verify(ca.publicKey) ? ca : undefined;
}

/** The CA: kept when usable, else created (ECDSA P-256, 10 years; key 0600, certificate 0644). */
async function ensureCa(
  paths: AppliancePaths,
  log: Logger,
  now: Date,
): Promise<{ ca: X509Certificate; created: boolean }> {
  const kept = await usableCa(paths, now);
  if (kept) return { ca: kept, created: false };
  if (await readCert(paths.tls.caCert)) {
    log.warn(
      'the appliance CA is unusable (expired, key missing or mismatched): creating a new one; ' +
        'clients must trust the new CA',
    );
  }
  const id = randomBytes(4).toString('hex');
  await withTemp(async (dir) => {
    const cnf = path.join(dir, 'ca.cnf');
    await writeFile(cnf, opensslConfig(`SLM-Copilot appliance CA ${id}`, []));
    const [key, crt] = [path.join(dir, 'ca.key'), path.join(dir, 'ca.crt')];
    const days = String(CA_VALIDITY_DAYS);
    const args = ['req', '-x509', '-config', cnf, '-extensions', 'ca_ext', ...P256, '-keyout', key, '-out', crt];
    await openssl([...args, '-days', days, '-sha256'], 'create the appliance CA');
    await writeFileAtomic(paths.tls.caKey, await readFile(key), { mode: 0o600 });
    await writeFileAtomic(paths.tls.caCert, await readFile(crt), { mode: 0o644 });
  });
  const ca = (await readCert(paths.tls.caCert))!;
  log.info(`created the appliance CA (SHA-256 ${ca.fingerprint256})`);
  return { ca, created: true };
}

/** Why the leaf must be (re-)issued, or undefined to keep it. */
async function leafReason(
  paths: AppliancePaths,
  ca: { ca: X509Certificate; created: boolean },
  sans: readonly string[],
  now: Date,
): Promise<string | undefined> {
  if (ca.created) return 'new CA';
  const leaf = await readCert(paths.tls.cert);
  if (!leaf) return 'no certificate';
  if (!(await readKeyMatches(leaf, paths.tls.key))) return 'key missing or mismatched';
  if (!leaf.checkIssued(ca.ca) || !leaf.verify(ca.ca.publicKey)) return 'not signed by the appliance CA';
  const names = certificateSans(leaf);
  if (!sameSet(names, sans)) return `names changed (${names.join(', ')} -> ${sans.join(', ')})`;
  if (daysLeft(leaf, now) < RENEW_BEFORE_DAYS) return `expires in ${Math.floor(daysLeft(leaf, now))} days`;
  return undefined;
}

async function issueLeaf(paths: AppliancePaths, sans: readonly string[]): Promise<void> {
  await withTemp(async (dir) => {
    const cnf = path.join(dir, 'leaf.cnf');
    const cn = sans.find((s) => s.startsWith('DNS:') && s !== 'DNS:localhost')?.slice(4) ?? 'SLM-Copilot';
    await writeFile(cnf, opensslConfig(cn, sans));
    const [key, csr, crt] = [path.join(dir, 'leaf.key'), path.join(dir, 'leaf.csr'), path.join(dir, 'leaf.crt')];
    await openssl(['req', '-new', '-config', cnf, ...P256, '-keyout', key, '-out', csr], 'create the server key');
    // A positive 128-bit serial (first bit clear).
    const serial = `0x${randomBytes(16)
      .toString('hex')
      .replace(/^[89a-f]/, '7')}`;
    const ca = ['-CA', paths.tls.caCert, '-CAkey', paths.tls.caKey, '-set_serial', serial];
    const ext = ['-extfile', cnf, '-extensions', 'leaf_ext'];
    await openssl(
      ['x509', '-req', '-in', csr, ...ca, '-days', String(LEAF_VALIDITY_DAYS), '-sha256', ...ext, '-out', crt],
      'sign the server certificate',
    );
    // Key first: nginx only reads the pair on a (tested) reload, never in between.
    await writeFileAtomic(paths.tls.key, await readFile(key), { mode: 0o600 });
    await writeFileAtomic(paths.tls.cert, await readFile(crt), { mode: 0o644 });
  });
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
  // nginx's workers (www-data) serve the CA from here (/slm-copilot-ca.pem): 0755 whatever the umask (the
  // stages run under 0077) and whatever an older version left.
  await mkdir(paths.tls.dir, { recursive: true, mode: 0o755 });
  await chmod(paths.tls.dir, 0o755);
  const ca = await ensureCa(paths, log, now);
  const reason = await leafReason(paths, ca, sans, now);
  if (reason) {
    await issueLeaf(paths, sans);
    log.info(`issued the server certificate (${reason}) for ${sans.join(', ')}`);
  }
  const final = (await readCert(paths.tls.cert))!;
  return {
    caCreated: ca.created,
    leafIssued: reason !== undefined,
    reason: reason ?? 'kept',
    sans,
    caFingerprint: ca.ca.fingerprint256,
    leafFingerprint: final.fingerprint256,
    leafNotAfter: new Date(final.validTo),
    served: { certificate: paths.tls.cert, key: paths.tls.key },
  };
}
