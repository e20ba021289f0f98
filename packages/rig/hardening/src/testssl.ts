// testssl.sh (Debian's `testssl.sh` package, command `testssl`) against the gateway, with the
// appliance CA added and a name from the certificate's SANs; its flat JSON parsed and judged.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { $ } from 'zx';

export interface TestsslFinding {
  id: string;
  ip?: string;
  port?: string;
  severity: 'OK' | 'INFO' | 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL' | 'WARN' | 'FATAL' | 'DEBUG' | string;
  finding: string;
}

export interface AllowListEntry {
  id: string;
  /** Why the finding cannot apply to this appliance. */
  reason: string;
}

/**
 * - `quick` (tests): protocols + server defaults (certificate, trust, revocation) through the local
 *   OpenSSL (`--ssl-native`): about a minute on a busy 2-core machine. Debian's OpenSSL 3 cannot
 *   speak SSLv2/SSLv3, so those two are "not tested" here; `full` tests them with testssl's own sockets.
 * - `full`: every default check with testssl's own sockets (protocols, ciphers, PFS, preferences,
 *   server defaults, headers, vulnerabilities, client simulation): 5-12 minutes here.
 */
export type TestsslMode = 'quick' | 'full';

export const QUICK_ARGS = ['--ssl-native', '--protocols', '--server-defaults'];

export interface TestsslRun {
  findings: TestsslFinding[];
  seconds: number;
  args: string[];
  exitCode: number | null;
  output: string;
}

export interface TestsslOptions {
  /** The DNS name to test (must be in the certificate's SANs). */
  hostname: string;
  port: number;
  /** The address to connect to instead of resolving `hostname`. */
  ip: string;
  /** The CA that signed the served certificate. */
  caFile: string;
  mode: TestsslMode;
  /** Overall time limit (default 20 min). */
  timeoutSeconds?: number;
}

export async function runTestssl(opts: TestsslOptions): Promise<TestsslRun> {
  const dir = await mkdtemp(path.join(tmpdir(), 'hardening-testssl-'));
  const json = path.join(dir, 'testssl.json');
  const args = [
    '--quiet',
    '--color',
    '0',
    '--warnings',
    'off',
    '--nodns',
    'none',
    '--connect-timeout',
    '10',
    '--openssl-timeout',
    '10',
    '--ip',
    opts.ip,
    '--add-ca',
    opts.caFile,
    ...(opts.mode === 'quick' ? QUICK_ARGS : []),
    '--jsonfile',
    json,
    `${opts.hostname}:${opts.port}`,
  ];
  const t0 = performance.now();
  try {
    const r = await $({ nothrow: true, quiet: true, timeout: `${opts.timeoutSeconds ?? 1200}s` })`testssl ${args}`;
    const seconds = (performance.now() - t0) / 1000;
    const text = await readFile(json, 'utf8').catch(() => '[]');
    return {
      findings: JSON.parse(text) as TestsslFinding[],
      seconds,
      args,
      exitCode: r.exitCode,
      output: r.stdout + r.stderr,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const ALLOWLIST_FILE = path.resolve(here, '../testssl-allowlist.json');

export async function readAllowList(file = ALLOWLIST_FILE): Promise<AllowListEntry[]> {
  const list = JSON.parse(await readFile(file, 'utf8')) as { allow: AllowListEntry[] };
  for (const e of list.allow) {
    if (typeof e.id !== 'string' || typeof e.reason !== 'string' || e.reason.trim().length < 20) {
      throw new Error(`${file}: every entry needs a finding id and a reason (got ${JSON.stringify(e)})`);
    }
  }
  return list.allow;
}

const offered = (f: TestsslFinding | undefined) => f !== undefined && /^offered/.test(f.finding);
const notOffered = (f: TestsslFinding | undefined) => f !== undefined && /^not offered/.test(f.finding);

/** Problems in a run: protocols other than TLS 1.2/1.3, HIGH/CRITICAL findings not allowed, an incomplete scan. */
export function judge(
  run: Pick<TestsslRun, 'findings'>,
  allow: readonly AllowListEntry[],
  mode: TestsslMode,
): string[] {
  const problems: string[] = [];
  const byId = new Map<string, TestsslFinding>();
  for (const f of run.findings) if (!byId.has(f.id)) byId.set(f.id, f);
  const allowed = new Set(allow.map((a) => a.id));
  if (run.findings.length === 0) problems.push('testssl produced no findings');
  for (const f of run.findings) {
    if (f.severity === 'FATAL') problems.push(`scan incomplete: ${f.id}: ${f.finding}`);
    if ((f.severity === 'HIGH' || f.severity === 'CRITICAL') && !allowed.has(f.id))
      problems.push(`${f.severity} ${f.id}: ${f.finding}`);
  }
  for (const id of ['TLS1_2', 'TLS1_3'])
    if (!offered(byId.get(id))) problems.push(`${id} must be offered: ${byId.get(id)?.finding ?? 'no finding'}`);
  for (const id of ['TLS1', 'TLS1_1'])
    if (!notOffered(byId.get(id))) problems.push(`${id} must not be offered: ${byId.get(id)?.finding ?? 'no finding'}`);
  for (const id of ['SSLv2', 'SSLv3']) {
    const f = byId.get(id);
    const untestedLocally =
      mode === 'quick' && f !== undefined && /not tested due to lack of local support/.test(f.finding);
    if (!notOffered(f) && !untestedLocally) problems.push(`${id} must not be offered: ${f?.finding ?? 'no finding'}`);
  }
  // The trust path really was checked (CA added, the name is in the SANs).
  for (const id of ['cert_chain_of_trust', 'cert_trust']) {
    const f = byId.get(id);
    if (f?.severity !== 'OK') problems.push(`${id} is not OK: ${f ? `${f.severity} ${f.finding}` : 'no finding'}`);
  }
  return problems;
}

/** Findings of a severity at or above MEDIUM, for the report. */
export function notable(run: Pick<TestsslRun, 'findings'>): TestsslFinding[] {
  return run.findings.filter((f) => ['MEDIUM', 'HIGH', 'CRITICAL', 'FATAL'].includes(f.severity));
}
