// Role lb: its client certificate for mutual TLS towards the inference nodes (see team-site.ts for why).
// Self-signed, made once and kept (its key never leaves the VM); what is published is its SHA-1
// fingerprint, the form nginx's $ssl_client_fingerprint takes on the inference node.
import { X509Certificate } from 'node:crypto';
import { chmod, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AppliancePaths } from '@slm-copilot/context-schema';
import { ensureDir, type Logger } from '@slm-copilot/task-kit';
import { nginxFingerprint } from './team.js';
import { openssl, readKeyMatches } from './tls-certs.js';

export interface LbClientCertificate {
  certificate: string;
  key: string;
  /** nginx's form: lower-case hex SHA-1, no colons. */
  fingerprint: string;
  created: boolean;
}

/** The certificate and key files (the key 0600 in the state directory, like the CA's key). */
export function lbClientFiles(paths: AppliancePaths): { certificate: string; key: string } {
  return {
    certificate: path.join(paths.tls.dir, 'lb-client.crt'),
    key: path.join(paths.stateDir, 'tls', 'lb-client.key'),
  };
}

async function current(files: { certificate: string; key: string }): Promise<X509Certificate | null> {
  try {
    const cert = new X509Certificate(await readFile(files.certificate));
    return (await readKeyMatches(cert, files.key)) ? cert : null;
  } catch {
    return null;
  }
}

/** The lb's client certificate: kept when present and matching its key, else made (EC P-256, 10 years). */
export async function ensureLbClientCertificate(paths: AppliancePaths, log: Logger): Promise<LbClientCertificate> {
  const files = lbClientFiles(paths);
  let cert = await current(files);
  const created = cert === null;
  if (!cert) {
    await ensureDir(path.dirname(files.key), 0o700);
    await ensureDir(path.dirname(files.certificate), 0o755);
    await openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '3650',
        '-subj',
        '/O=SLM-Copilot/CN=slm-copilot-lb',
        '-keyout',
        files.key,
        '-out',
        files.certificate,
      ],
      'make the load balancer client certificate',
    );
    await chmod(files.key, 0o600);
    cert = await current(files);
    if (!cert) throw new Error(`internal: ${files.certificate} does not match ${files.key}`);
    log.info(`made the load balancer's client certificate ${files.certificate}`);
  }
  return { ...files, fingerprint: nginxFingerprint(cert.fingerprint), created };
}
