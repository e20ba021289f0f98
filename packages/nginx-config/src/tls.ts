// What to serve now (before nginx starts), for every TLS mode: always a certificate that exists.
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import { createLogger, ExitCode, TaskError, type Logger } from '@slm-copilot/task-kit';
import type { ServedCertificate } from './gateway-files.js';
import { certbotDirs, currentLetsEncrypt, type CertbotDirs } from './tls-acme.js';
import { installCustomCertificate, type CustomCertificateResult } from './tls-custom.js';
import { ensureSelfSigned, type SelfSignedResult } from './tls-self-signed.js';

export {
  CA_VALIDITY_DAYS,
  LEAF_VALIDITY_DAYS,
  RENEW_BEFORE_DAYS,
  canonicalIp,
  certificateSans,
  daysLeft,
  fingerprintOf,
  leafSans,
} from './tls-certs.js';
export { ensureSelfSigned, type SelfSignedOptions, type SelfSignedResult } from './tls-self-signed.js';
export { installCustomCertificate, type CustomCertificateResult } from './tls-custom.js';
export {
  certbotDirs,
  currentLetsEncrypt,
  letsEncryptFiles,
  letsEncryptRequest,
  obtainLetsEncrypt,
  unreachableByWorkers,
  type CertbotDirs,
  type LetsEncryptOptions,
  type LetsEncryptResult,
} from './tls-acme.js';

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

export interface PrepareTlsOptions {
  paths: AppliancePaths;
  ipAddresses: readonly string[];
  certbotDirs?: CertbotDirs;
  log?: Logger;
  now?: Date;
}

async function prepareCustom(config: Config, opts: PrepareTlsOptions): Promise<TlsPlan> {
  if (!config.tls.certificatePem || !config.tls.privateKeyPem) {
    throw new TaskError('TLS mode custom needs ONEAPP_COPILOT_TLS_CERT and ONEAPP_COPILOT_TLS_KEY', {
      exitCode: ExitCode.invalidConfig,
    });
  }
  const custom = await installCustomCertificate({
    paths: opts.paths,
    certificatePem: config.tls.certificatePem,
    privateKeyPem: config.tls.privateKeyPem,
    now: opts.now,
  });
  for (const w of custom.warnings) (opts.log ?? createLogger()).warn(w);
  return { kind: 'custom', served: custom.served, fingerprint: custom.fingerprint, custom, letsEncryptPending: false };
}

/**
 * Makes sure a certificate exists before nginx starts, for every mode: custom installs the operator's
 * pair; self-signed keeps the CA and (re-)issues the leaf; Let's Encrypt serves its certificate when a
 * valid one is already there, else the self-signed leaf until {@link obtainLetsEncrypt} succeeds.
 */
export async function prepareTls(config: Config, opts: PrepareTlsOptions): Promise<TlsPlan> {
  const { paths } = opts;
  if (config.tls.mode === 'custom') return prepareCustom(config, opts);
  const selfSigned = await ensureSelfSigned({
    paths,
    hostname: config.hostname,
    ipAddresses: opts.ipAddresses,
    log: opts.log,
    now: opts.now,
  });
  const fallback: TlsPlan = {
    kind: 'self-signed',
    served: selfSigned.served,
    fingerprint: selfSigned.leafFingerprint,
    selfSigned,
    letsEncryptPending: false,
  };
  if (config.tls.mode !== 'letsencrypt' || !config.hostname) return fallback;
  const existing = await currentLetsEncrypt({
    hostname: config.hostname,
    acmeDirectory: config.tls.acmeDirectory,
    dirs: opts.certbotDirs ?? certbotDirs(paths),
    now: opts.now,
  });
  if (!('served' in existing)) return { ...fallback, letsEncryptPending: true, letsEncryptReason: existing.reason };
  return {
    kind: 'letsencrypt',
    served: existing.served,
    fingerprint: existing.cert.fingerprint256,
    selfSigned,
    letsEncryptPending: false,
  };
}
