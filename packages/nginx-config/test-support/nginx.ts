// Test support: runs the real Debian nginx on a render under a temp prefix.
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { appliancePaths, parseContext, type AppliancePaths, type Config } from '@slm-copilot/context-schema';
import { applyFileSet, freePort, reapOnExit, type FileSet } from '@slm-copilot/task-kit';
import { NGINX, nginxMainConf, startNginx, type NginxProcess } from '@slm-copilot/testbed';
import { $ } from 'zx';
import { renderGateway, type GatewayRenderOptions } from '../src/render.js';

export { freePort, NGINX };

const roots = new Set<string>();
reapOnExit(() => removeTempRoots());

/** Removes the temp roots this test file created (call from afterAll, after stopping nginx). */
export function removeTempRoots(): void {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
  roots.clear();
}

/**
 * A temp root for one appliance layout; world-traversable so nginx's workers (nobody) can read
 * webroots. Removed by removeTempRoots() (SLM_COPILOT_TESTBED_KEEP_TEMP=1 keeps them).
 */
export async function tempRoot(tag: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `nginx-config-${tag}-`));
  await chmod(dir, 0o755);
  if (process.env.SLM_COPILOT_TESTBED_KEEP_TEMP !== '1') roots.add(dir);
  return dir;
}

/** Paths under `root` with the engine on `enginePort` (instead of 8080). */
export function testPaths(root: string, enginePort: number): AppliancePaths {
  const p = appliancePaths(root);
  return { ...p, engine: { ...p.engine, port: enginePort } };
}

export function testConfig(env: Record<string, string> = {}): Config {
  return parseContext({ ONEAPP_COPILOT_PASSWORD: 'sk-test-main-key-0123456789abcdef', ...env });
}

/** The minimal main nginx.conf the tests use instead of Debian's: it only includes conf.d. */
export function mainConf(root: string, paths: AppliancePaths): string {
  return nginxMainConf(path.join(root, 'run/nginx'), `${path.join(paths.nginx.confDir, 'conf.d')}/*.conf`);
}

export interface Gateway {
  root: string;
  paths: AppliancePaths;
  config: Config;
  httpsPort: number;
  httpPort: number;
  enginePort: number;
  confFile: string;
  files: FileSet;
  /** `nginx -t` against this instance's main config. */
  testCommand: string[];
  reloadCommand: string[];
  baseUrl: string;
  /** PEM the clients trust (the throwaway certificate, or StartGatewayOptions.trustPem). */
  trustPem: string;
  /**
   * The access log. nginx writes a request's line when it finalizes the request, which can come after
   * the client has read the last byte of a stream; `settle` waits until `until` holds (or, without it,
   * until the log stops growing for `quietMs`), at most `maxMs`, then returns what is there.
   */
  accessLog(settle?: AccessLogSettle): Promise<string>;
  errorLog(): Promise<string>;
  /**
   * How many reloads the master has completed, from its error log: new workers started after a SIGHUP
   * and an old one shutting down (until then the old worker still accepts connections, with the old config).
   */
  reloads(): Promise<number>;
  stop(): Promise<void>;
  process: ChildProcess;
}

export interface AccessLogSettle {
  until?: (log: string) => boolean;
  quietMs?: number;
  maxMs?: number;
}

/** Reads `read()` until `until` holds or it stops changing for `quietMs`, bounded by `maxMs`. */
export async function settledRead(read: () => Promise<string>, s: AccessLogSettle = {}): Promise<string> {
  const { until, quietMs = 300, maxMs = 10_000 } = s;
  const end = performance.now() + maxMs;
  let text = await read();
  for (;;) {
    if (until?.(text)) return text;
    if (performance.now() >= end) return text;
    await new Promise((r) => setTimeout(r, until ? 50 : quietMs));
    const next = await read();
    if (!until && next === text) return text;
    text = next;
  }
}

export interface StartGatewayOptions {
  env?: Record<string, string>;
  render?: Partial<GatewayRenderOptions>;
  /** Changes the rendered files before they are written (mutation checks). */
  mutate?: (
    files: FileSet,
    ctx: { paths: AppliancePaths; httpsPort: number; httpPort: number; tls: { certificate: string; key: string } },
  ) => FileSet;
  enginePort?: number;
  /** Certificate and key to serve; default: a throwaway self-signed pair. */
  tls?: { certificate: string; key: string };
  /** PEM file clients should trust for `tls` (default: the throwaway certificate itself). */
  trustFile?: string;
  keys?: { main: string; extra: string[] };
  tag?: string;
  root?: string;
  /** Command prefix nginx runs under, e.g. `['ip', 'netns', 'exec', ns]` for a network namespace. */
  wrap?: string[];
  /** Address the HTTPS port is checked on before returning (default 127.0.0.1). */
  readyAddress?: string;
}

const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
const SAN = ['-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'];

async function throwawayCert(dir: string): Promise<{ certificate: string; key: string }> {
  await mkdir(dir, { recursive: true });
  const certificate = path.join(dir, 'throwaway.crt');
  const key = path.join(dir, 'throwaway.key');
  await $({
    quiet: true,
  })`openssl req -x509 ${P256} -keyout ${key} -out ${certificate} -days 2 -subj /CN=localhost ${SAN}`;
  return { certificate, key };
}

/** What a port race looks like: another process bound one of our free ports before nginx did. */
const PORT_TAKEN = /Address already in use/;

/**
 * Completed reloads in a main error log: each SIGHUP's "reconfiguring" followed by a new worker and an old
 * worker's "gracefully shutting down" (it stops accepting then; `worker_processes 1` here).
 */
function countReloads(log: string): number {
  let n = 0;
  for (const part of log.split(/signal 1 \(SIGHUP\) received[^\n]*reconfiguring/).slice(1)) {
    if (/start worker process[\s\S]*gracefully shutting down/.test(part)) n++;
  }
  return n;
}

interface Attempt {
  httpsPort: number;
  httpPort: number;
  files: FileSet;
  nginx: NginxProcess;
}

/** Renders with fresh ports, writes and starts nginx; retried by startGateway when a port was taken meanwhile. */
async function attempt(
  opts: StartGatewayOptions,
  root: string,
  paths: AppliancePaths,
  tls: { certificate: string; key: string },
): Promise<Attempt> {
  const [httpsPort, httpPort] = [await freePort(), await freePort()];
  const config = testConfig({ ONEAPP_COPILOT_HTTPS_PORT: String(httpsPort), ...opts.env });
  let files = renderGateway(config, {
    paths,
    keys: opts.keys ?? { main: config.apiKey!, extra: config.extraApiKeys },
    tls,
    httpPort,
    listenAddresses: ['127.0.0.1'],
    keyFileOwner: null,
    ...opts.render,
  });
  if (opts.mutate) files = opts.mutate(files, { paths, httpsPort, httpPort, tls });
  await applyFileSet('/', files);
  const nginx = await startNginx({
    runDir: path.join(root, 'run/nginx'),
    include: `${path.join(paths.nginx.confDir, 'conf.d')}/*.conf`,
    readyPort: httpsPort,
    readyAddress: opts.readyAddress,
    readyTimeoutMs: 30_000,
    wrap: opts.wrap,
  });
  return { httpsPort, httpPort, files, nginx };
}

/** Renders, writes under a temp root and starts the real nginx in the foreground; resolves once it listens. */
export async function startGateway(opts: StartGatewayOptions = {}): Promise<Gateway> {
  const root = opts.root ?? (await tempRoot(opts.tag ?? 'gw'));
  const enginePort = opts.enginePort ?? (await freePort());
  const paths = testPaths(root, enginePort);
  const tls = opts.tls ?? (await throwawayCert(path.join(root, 'throwaway-tls')));
  await mkdir(path.join(root, 'var/log/nginx'), { recursive: true });
  await mkdir(paths.nginx.acmeWebroot, { recursive: true });
  let started: Attempt | undefined;
  for (let tries = 1; !started; tries++) {
    started = await attempt(opts, root, paths, tls).catch((error: Error) => {
      if (tries < 3 && PORT_TAKEN.test(error.message)) return undefined;
      throw error;
    });
  }
  const { httpsPort, httpPort, files, nginx } = started;
  const runDir = path.join(root, 'run/nginx');
  const logDir = path.join(root, 'var/log/nginx');
  return {
    root,
    paths,
    config: testConfig({ ONEAPP_COPILOT_HTTPS_PORT: String(httpsPort), ...opts.env }),
    httpsPort,
    httpPort,
    enginePort,
    confFile: path.join(runDir, 'nginx.conf'),
    files,
    testCommand: [...nginx.baseCommand, '-t', '-q'],
    reloadCommand: [...nginx.baseCommand, '-s', 'reload'],
    baseUrl: `https://localhost:${httpsPort}`,
    trustPem: await readFile(opts.trustFile ?? tls.certificate, 'utf8'),
    accessLog: (settle) => {
      const read = () => readFile(path.join(logDir, 'slm-copilot.access.log'), 'utf8').catch(() => '');
      return settle ? settledRead(read, settle) : read();
    },
    errorLog: () => readFile(path.join(logDir, 'slm-copilot.error.log'), 'utf8').catch(() => ''),
    reloads: async () => countReloads(await readFile(path.join(runDir, 'main-error.log'), 'utf8').catch(() => '')),
    stop: nginx.stop,
    process: nginx.process,
  };
}
