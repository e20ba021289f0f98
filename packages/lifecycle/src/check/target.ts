// What `slm-copilot check` talks to: on the VM, read from the appliance's own files (the report, else
// the rendered gateway, the key file and the per-VM CA); from a workstation, from --url/--key/--ca.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { appliancePaths } from '@slm-copilot/context-schema';
import { ExitCode, exists, TaskError, UsageError } from '@slm-copilot/task-kit';
import type { Endpoint } from './https.js';

/** The environment variable a workstation may give the key in (never printed). */
export const KEY_ENV = 'SLM_COPILOT_API_KEY';

export interface CheckFlags {
  url?: string;
  key?: string;
  ca?: string;
  address?: string;
  model?: string;
  root?: string;
}

/** The report's `[Engine]` choice, or why it is not known. */
export type EngineFacts =
  | { known: true; source: string; requested?: string; serving?: string; fallback?: string; fallbackReason?: string }
  | { known: false; why: string };

export interface CheckTarget {
  endpoint: Endpoint;
  key: string;
  /** Where the key came from (the key itself is never shown). */
  keySource: string;
  /** The CA file trusted, or the system's roots. */
  caSource: string;
  model?: string;
  engine: EngineFacts;
}

type Ini = Record<string, Record<string, string>>;

/** The one-apps report format (`[Section]`, then `key = value`). */
export function parseIni(text: string): Ini {
  const out: Ini = {};
  let section: Record<string, string> | undefined;
  for (const line of text.split('\n')) {
    const head = /^\[([^\]]+)\]\s*$/.exec(line);
    if (head) section = out[head[1]!] ??= {};
    const entry = /^([a-z0-9_]+) = (.*)$/.exec(line);
    if (entry && section) section[entry[1]!] = entry[2]!;
  }
  return out;
}

/** `https://host[:port][/v1]` → the endpoint (the TLS name is the URL's host). */
export function endpointFromUrl(raw: string, flag = '--url'): Endpoint {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${flag} must be a URL like https://HOST:PORT, got "${raw}"`);
  }
  if (url.protocol !== 'https:' || !url.hostname)
    throw new UsageError(`${flag} must be an https:// URL with a host, got "${raw}"`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port ? Number(url.port) : 443;
  return { origin: `https://${url.host}`, host, port };
}

async function readCa(file: string, flag: string): Promise<Buffer> {
  const pem = await readFile(file).catch((error: Error) => {
    throw new TaskError(`cannot read the CA file ${file} (${flag}): ${error.message}`, {
      exitCode: ExitCode.environment,
    });
  });
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new UsageError(`${flag} ${file} is not a PEM certificate (no "BEGIN CERTIFICATE" line)`);
  return pem;
}

function checkedAddress(address: string | undefined): string | undefined {
  if (address !== undefined && !isIP(address))
    throw new UsageError(`--address must be an IP address, got "${address}"`);
  return address;
}

function givenKey(flags: CheckFlags, env: NodeJS.ProcessEnv): { key: string; keySource: string } | undefined {
  if (flags.key !== undefined) {
    if (!flags.key) throw new UsageError('--key is empty');
    return { key: flags.key, keySource: '--key' };
  }
  const fromEnv = env[KEY_ENV];
  return fromEnv ? { key: fromEnv, keySource: KEY_ENV } : undefined;
}

/** From a workstation: everything from the flags (and the key's environment variable). */
async function fromFlags(flags: CheckFlags & { url: string }, env: NodeJS.ProcessEnv): Promise<CheckTarget> {
  const endpoint = endpointFromUrl(flags.url);
  const key = givenKey(flags, env);
  if (!key) throw new UsageError(`no API key: give --key KEY or set ${KEY_ENV}`);
  const address = checkedAddress(flags.address);
  return {
    endpoint: {
      ...endpoint,
      ...(address ? { address } : {}),
      ...(flags.ca ? { ca: await readCa(flags.ca, '--ca') } : {}),
    },
    ...key,
    caSource: flags.ca ?? "the system's trusted roots",
    model: flags.model,
    engine: { known: false, why: 'not known from outside' },
  };
}

async function readReport(file: string): Promise<{ ini?: Ini; why: string }> {
  try {
    return { ini: parseIni(await readFile(file, 'utf8')), why: '' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { why: code === 'EACCES' ? `the report ${file} is not readable (run as root)` : `no report at ${file}` };
  }
}

/** The HTTPS port from the rendered gateway's `listen … ssl` line. */
async function renderedHttpsPort(siteFile: string): Promise<number | undefined> {
  const text = await readFile(siteFile, 'utf8').catch(() => '');
  const m = /^\s*listen\s+(?:\S+:)?(\d+)\s+ssl\b/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

function engineFacts(ini: Ini | undefined, reportFile: string, why: string): EngineFacts {
  const e = ini?.Engine;
  if (!e?.serving) return { known: false, why: e ? `the report ${reportFile} has no [Engine] serving line yet` : why };
  return {
    known: true,
    source: reportFile,
    requested: e.requested,
    serving: e.serving,
    fallback: e.fallback,
    fallbackReason: e.fallback_reason,
  };
}

/** On the VM: the report first, then the rendered gateway and the key file; the gateway is reached on loopback. */
async function fromAppliance(flags: CheckFlags, env: NodeJS.ProcessEnv): Promise<CheckTarget> {
  const paths = appliancePaths(flags.root && flags.root !== '/' ? flags.root : '');
  const report = await readReport(paths.reportFile);
  const connection = report.ini?.Connection ?? {};
  let endpoint: Endpoint;
  if (connection.endpoint)
    endpoint = endpointFromUrl(connection.endpoint.replace(/\/v1\/?$/, ''), 'the report endpoint');
  else {
    const port = await renderedHttpsPort(paths.nginx.siteFile);
    if (port === undefined)
      throw new TaskError(`${report.why} and no rendered gateway at ${paths.nginx.siteFile}: is this the appliance?`, {
        exitCode: ExitCode.environment,
        hint: 'from a workstation, give --url https://HOST:PORT --key KEY --ca FILE',
      });
    endpoint = endpointFromUrl(`https://localhost:${port}`);
  }
  const fileKey = (await readFile(paths.apiKeyFile, 'utf8').catch(() => '')).trim();
  const key =
    givenKey(flags, env) ??
    (connection.api_key ? { key: connection.api_key, keySource: `the report ${paths.reportFile}` } : undefined) ??
    (fileKey ? { key: fileKey, keySource: paths.apiKeyFile } : undefined);
  if (!key) throw new UsageError(`no API key: ${report.why} and no key file ${paths.apiKeyFile}; give --key KEY`);
  const selfSigned = (report.ini?.TLS?.mode ?? 'self-signed') === 'self-signed';
  const caFile = flags.ca ?? (selfSigned && (await exists(paths.tls.caCert)) ? paths.tls.caCert : undefined);
  return {
    endpoint: {
      ...endpoint,
      address: checkedAddress(flags.address) ?? '127.0.0.1',
      ...(caFile ? { ca: await readCa(caFile, flags.ca ? '--ca' : 'the per-VM CA') } : {}),
    },
    ...key,
    caSource: caFile ?? "the system's trusted roots",
    model: flags.model ?? connection.model_id,
    engine: engineFacts(report.ini, paths.reportFile, report.why),
  };
}

/** `--url` means a workstation; without it the command reads the appliance it runs on (under `--root`). */
export function resolveTarget(flags: CheckFlags, env: NodeJS.ProcessEnv = process.env): Promise<CheckTarget> {
  return flags.url !== undefined ? fromFlags({ ...flags, url: flags.url }, env) : fromAppliance(flags, env);
}
