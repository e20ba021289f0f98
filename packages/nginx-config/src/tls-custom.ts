// Custom mode: the operator's certificate chain and key (ONEAPP_COPILOT_TLS_CERT / _KEY).
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AppliancePaths } from '@slm-copilot/context-schema';
import { ExitCode, sh, TaskError, writeFileAtomic } from '@slm-copilot/task-kit';
import type { ServedCertificate } from './gateway-files.js';
import { certificateSans, daysLeft, RENEW_BEFORE_DAYS, withTemp } from './tls-certs.js';

export interface CustomCertificateResult {
  fingerprint: string;
  notAfter: Date;
  subject: string;
  sans: string[];
  warnings: string[];
  served: ServedCertificate;
}

const refused = (message: string, hint?: string) => new TaskError(message, { exitCode: ExitCode.invalidConfig, hint });

/** Checks with openssl that the certificate and the key parse and belong together; throws otherwise. */
async function checkPair(crt: string, key: string): Promise<void> {
  const certPub = await sh({ nothrow: true })`openssl x509 -in ${crt} -noout -pubkey`;
  if (certPub.exitCode !== 0) {
    throw refused(
      'ONEAPP_COPILOT_TLS_CERT is not a PEM certificate (openssl cannot read it)',
      'give the base64 of the PEM chain, leaf first',
    );
  }
  const keyPub = await sh({ nothrow: true })`openssl pkey -in ${key} -pubout -passin pass:`;
  if (keyPub.exitCode !== 0) {
    throw refused(
      'ONEAPP_COPILOT_TLS_KEY is not an unencrypted PEM private key (openssl cannot read it)',
      'give the base64 of the PEM key, without a passphrase',
    );
  }
  if (certPub.stdout.trim() !== keyPub.stdout.trim()) {
    throw refused(
      'ONEAPP_COPILOT_TLS_CERT and ONEAPP_COPILOT_TLS_KEY do not match: ' +
        'the certificate was not issued for this private key',
      'give the key the certificate was issued for',
    );
  }
}

function validityWarnings(cert: X509Certificate, now: Date): string[] {
  const warnings: string[] = [];
  const left = daysLeft(cert, now);
  if (left < 0) warnings.push(`the custom certificate expired on ${cert.validTo}`);
  else if (left < RENEW_BEFORE_DAYS) {
    warnings.push(`the custom certificate expires in ${Math.floor(left)} days (${cert.validTo})`);
  }
  if (new Date(cert.validFrom).getTime() > now.getTime()) {
    warnings.push(`the custom certificate is not valid before ${cert.validFrom}`);
  }
  return warnings;
}

const withNewline = (pem: string) => (pem.endsWith('\n') ? pem : `${pem}\n`);

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
  return withTemp(async (dir) => {
    const [crt, key] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
    await writeFile(crt, opts.certificatePem, { mode: 0o600 });
    await writeFile(key, opts.privateKeyPem, { mode: 0o600 });
    await checkPair(crt, key);
    const cert = new X509Certificate(await readFile(crt));
    const warnings = validityWarnings(cert, opts.now ?? new Date());
    await mkdir(paths.tls.dir, { recursive: true, mode: 0o755 });
    await writeFileAtomic(paths.tls.key, withNewline(opts.privateKeyPem), { mode: 0o600 });
    await writeFileAtomic(paths.tls.cert, withNewline(opts.certificatePem), { mode: 0o644 });
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
