// What every TLS mode shares: SANs (pure), reading certificates and keys on disk, and openssl.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ExitCode, sh, TaskError } from '@slm-copilot/task-kit';

/** Validity of the per-VM CA (kept across boots). */
export const CA_VALIDITY_DAYS = 3650;
/**
 * Validity of the leaf: 825 days is the most Apple accepts from a private CA; re-issued on boot when
 * fewer than {@link RENEW_BEFORE_DAYS} remain.
 */
export const LEAF_VALIDITY_DAYS = 825;
export const RENEW_BEFORE_DAYS = 30;
const DAY = 86_400_000;

export const DNS_NAME =
  /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

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

export const sameSet = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

export async function readCert(file: string): Promise<X509Certificate | undefined> {
  try {
    return new X509Certificate(await readFile(file));
  } catch {
    return undefined;
  }
}

export async function readKeyMatches(cert: X509Certificate, keyFile: string): Promise<boolean> {
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

/** Runs `fn` in a private temp directory that is removed afterwards (keys never linger). */
export async function withTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'slm-tls-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function openssl(args: string[], what: string): Promise<string> {
  const r = await sh({ nothrow: true })`openssl ${args}`;
  if (r.exitCode !== 0) {
    throw new TaskError(`openssl failed to ${what}: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`, {
      exitCode: ExitCode.environment,
    });
  }
  return r.stdout;
}
