// Let's Encrypt (or any ACME directory) with `certbot --webroot`; nginx serves the webroot on port 80.
import type { X509Certificate } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import { createLogger, ExitCode, sh, TaskError, underRoot, type Logger } from '@slm-copilot/task-kit';
import type { ServedCertificate } from './gateway-files.js';
import { certificateSans, daysLeft, DNS_NAME, readCert, readKeyMatches, RENEW_BEFORE_DAYS } from './tls-certs.js';

export interface CertbotDirs {
  configDir: string;
  workDir: string;
  logsDir: string;
}

/** certbot's directories under the appliance prefix (Debian's certbot.timer renews the default ones). */
export function certbotDirs(paths: AppliancePaths): CertbotDirs {
  const p = (appliancePath: string) => underRoot(paths.prefix || '/', appliancePath);
  return { configDir: p('/etc/letsencrypt'), workDir: p('/var/lib/letsencrypt'), logsDir: p('/var/log/letsencrypt') };
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

/**
 * THE options of {@link obtainLetsEncrypt} for a Config: hostname, e-mail and ACME directory from
 * the context, the webroot and certbot's directories from the paths. Throws (invalid config) when
 * ONEAPP_COPILOT_HOSTNAME is empty. `extra` adds or overrides options (certbot binary, env, timeout…).
 */
export function letsEncryptRequest(
  config: Config,
  paths: AppliancePaths,
  extra: Pick<LetsEncryptOptions, 'deployHook'> & Partial<LetsEncryptOptions>,
): LetsEncryptOptions {
  if (!config.hostname) {
    throw new TaskError("ONEAPP_COPILOT_HOSTNAME is empty: Let's Encrypt needs a DNS name", {
      exitCode: ExitCode.invalidConfig,
    });
  }
  return {
    hostname: config.hostname,
    email: config.tls.letsEncryptEmail,
    acmeDirectory: config.tls.acmeDirectory,
    webroot: paths.nginx.acmeWebroot,
    dirs: certbotDirs(paths),
    ...extra,
  };
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
  if (!certificateSans(cert).includes(`DNS:${opts.hostname.toLowerCase()}`)) {
    return { reason: `not for ${opts.hostname}` };
  }
  const left = daysLeft(cert, opts.now);
  const min = opts.minValidDays ?? RENEW_BEFORE_DAYS;
  if (left < min) return { reason: `only ${Math.floor(left)} days left` };
  const conf = await readFile(files.renewalConf, 'utf8').catch(() => '');
  const server = /^server\s*=\s*(\S+)\s*$/m.exec(conf)?.[1];
  if (server !== opts.acmeDirectory) return { reason: `issued by another ACME directory (${server ?? 'unknown'})` };
  return { served: { certificate: files.certificate, key: files.key }, cert };
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

function certbotArgs(opts: LetsEncryptOptions): string[] {
  return [
    'certonly',
    ...['--webroot', '-w', opts.webroot, '-d', opts.hostname, '--cert-name', opts.hostname],
    ...['--server', opts.acmeDirectory, '--agree-tos', '--non-interactive', '--force-renewal'],
    ...['--config-dir', opts.dirs.configDir, '--work-dir', opts.dirs.workDir, '--logs-dir', opts.dirs.logsDir],
    ...['--deploy-hook', opts.deployHook],
    ...(opts.email ? ['-m', opts.email, '--no-eff-email'] : ['--register-unsafely-without-email']),
  ];
}

/** Runs certbot; the reason it failed (last lines of its output), or undefined on success. */
async function runCertbot(opts: LetsEncryptOptions): Promise<string | undefined> {
  await mkdir(opts.webroot, { recursive: true, mode: 0o755 });
  for (const d of [opts.dirs.configDir, opts.dirs.workDir, opts.dirs.logsDir]) {
    await mkdir(d, { recursive: true, mode: 0o755 });
  }
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const r = await sh({
    nothrow: true,
    env: { ...process.env, ...opts.env },
    timeout: timeoutMs,
    timeoutSignal: 'SIGKILL',
  })`${opts.certbot ?? 'certbot'} ${certbotArgs(opts)}`;
  if (r.exitCode === 0) return undefined;
  if (r.signal) return `certbot did not finish within ${Math.round(timeoutMs / 1000)} s`;
  const lines = `${r.stderr}\n${r.stdout}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^(Saving debug log|Ask for help|See the logfile|- - -)/.test(l));
  return `certbot failed (exit ${r.exitCode}): ${lines.slice(-6).join(' / ')}`;
}

const success = (reused: boolean, got: { served: ServedCertificate; cert: X509Certificate }): LetsEncryptResult => ({
  ok: true,
  reused,
  served: got.served,
  fingerprint: got.cert.fingerprint256,
  notAfter: new Date(got.cert.validTo),
  issuer: got.cert.issuer,
});

/**
 * Gets a certificate with `certbot certonly --webroot` (nginx must already serve the webroot on
 * port 80). A certificate from the same directory with more than `minValidDays` left is reused,
 * not re-requested. Never throws for ACME problems: returns the reason, and the caller keeps
 * serving the self-signed certificate.
 */
export async function obtainLetsEncrypt(opts: LetsEncryptOptions): Promise<LetsEncryptResult> {
  const log = opts.log ?? createLogger();
  const failed = (reason: string): LetsEncryptResult => {
    log.warn(`Let's Encrypt: ${reason}; keeping the self-signed certificate`);
    return { ok: false, reason };
  };
  const existing = await currentLetsEncrypt(opts);
  if ('served' in existing) {
    log.info(`Let's Encrypt: keeping the certificate for ${opts.hostname} (valid until ${existing.cert.validTo})`);
    return success(true, existing);
  }
  if (!DNS_NAME.test(opts.hostname)) return { ok: false, reason: `not a DNS name: ${JSON.stringify(opts.hostname)}` };
  const blocked = await unreachableByWorkers(opts.webroot);
  if (blocked) {
    const mode = (await stat(blocked)).mode.toString(8).slice(-4);
    return failed(
      `nginx's workers cannot read the ACME webroot ${opts.webroot}: ${blocked} is mode ${mode} (others need +x)`,
    );
  }
  log.info(
    `Let's Encrypt: requesting a certificate for ${opts.hostname} from ${opts.acmeDirectory} (${existing.reason})`,
  );
  const error = await runCertbot(opts);
  if (error) return failed(error);
  const got = await currentLetsEncrypt({ ...opts, minValidDays: 0 });
  if (!('served' in got))
    return { ok: false, reason: `certbot succeeded but the certificate is unusable: ${got.reason}` };
  const issuer = got.cert.issuer.replace(/\n/g, ', ');
  log.info(`Let's Encrypt: certificate for ${opts.hostname} issued by ${issuer}, valid until ${got.cert.validTo}`);
  return success(false, got);
}
