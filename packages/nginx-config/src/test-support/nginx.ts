// Test support (not exported): runs the real Debian nginx on a render under a temp prefix.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { appliancePaths, parseContext, type AppliancePaths, type Config } from '@slm-copilot/context-schema';
import { applyFileSet, type FileSet } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { renderGateway, type GatewayRenderOptions } from '../render.js';

export const NGINX = process.env.SLM_COPILOT_TESTBED_NGINX ?? '/usr/sbin/nginx';

/** A free TCP port on 127.0.0.1 (bind 0, read, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

const roots = new Set<string>();
process.on('exit', () => removeTempRoots());

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
  const t = (n: string) => path.join(root, 'run/nginx', n);
  return `worker_processes 1;
pid ${t('nginx.pid')};
error_log ${t('main-error.log')} info;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path ${t('body')};
    proxy_temp_path ${t('proxy')};
    fastcgi_temp_path ${t('fastcgi')};
    uwsgi_temp_path ${t('uwsgi')};
    scgi_temp_path ${t('scgi')};
    include ${path.join(paths.nginx.confDir, 'conf.d')}/*.conf;
}
`;
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
  accessLog(): Promise<string>;
  errorLog(): Promise<string>;
  stop(): Promise<void>;
  process: ChildProcess;
}

export interface StartGatewayOptions {
  env?: Record<string, string>;
  render?: Partial<GatewayRenderOptions>;
  /** Changes the rendered files before they are written (mutation checks). */
  mutate?: (files: FileSet, ctx: { paths: AppliancePaths; httpsPort: number; httpPort: number; tls: { certificate: string; key: string } }) => FileSet;
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

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

async function throwawayCert(dir: string): Promise<{ certificate: string; key: string }> {
  await mkdir(dir, { recursive: true });
  const certificate = path.join(dir, 'throwaway.crt');
  const key = path.join(dir, 'throwaway.key');
  await $({ quiet: true })`openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ${key} -out ${certificate} -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1`;
  return { certificate, key };
}

/** Renders, writes under a temp root and starts the real nginx in the foreground; resolves once it listens. */
export async function startGateway(opts: StartGatewayOptions = {}): Promise<Gateway> {
  const root = opts.root ?? (await tempRoot(opts.tag ?? 'gw'));
  const [httpsPort, httpPort] = [await freePort(), await freePort()];
  const enginePort = opts.enginePort ?? (await freePort());
  const paths = testPaths(root, enginePort);
  const config = testConfig({ ONEAPP_COPILOT_HTTPS_PORT: String(httpsPort), ...opts.env });
  const tls = opts.tls ?? (await throwawayCert(path.join(root, 'throwaway-tls')));
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
  await mkdir(path.join(root, 'run/nginx'), { recursive: true });
  await mkdir(path.join(root, 'var/log/nginx'), { recursive: true });
  await mkdir(paths.nginx.acmeWebroot, { recursive: true });
  const confFile = path.join(root, 'run/nginx/nginx.conf');
  await writeFile(confFile, mainConf(root, paths));
  const base = [NGINX, '-p', path.join(root, 'run/nginx'), '-e', path.join(root, 'run/nginx/main-error.log'), '-c', confFile];
  const testCommand = [...base, '-t', '-q'];
  const reloadCommand = [...base, '-s', 'reload'];
  const argv = [...(opts.wrap ?? []), ...base, '-g', 'daemon off;'];
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  let exited = false;
  const done = new Promise<void>((resolve) =>
    proc.on('exit', () => {
      exited = true;
      running.delete(proc);
      resolve();
    }),
  );
  const stop = async () => {
    if (exited) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(t);
  };
  // Ready when the HTTPS port accepts connections.
  const t0 = Date.now();
  for (;;) {
    if (exited) throw new Error(`nginx exited before listening:\n${output}\n${await readFile(path.join(root, 'run/nginx/main-error.log'), 'utf8').catch(() => '')}`);
    if (Date.now() - t0 > 10_000) {
      await stop();
      throw new Error(`nginx did not listen on ${httpsPort} within 10 s:\n${output}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection(httpsPort, opts.readyAddress ?? '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const logDir = path.join(root, 'var/log/nginx');
  return {
    root,
    paths,
    config,
    httpsPort,
    httpPort,
    enginePort,
    confFile,
    files,
    testCommand,
    reloadCommand,
    baseUrl: `https://localhost:${httpsPort}`,
    trustPem: await readFile(opts.trustFile ?? tls.certificate, 'utf8'),
    accessLog: () => readFile(path.join(logDir, 'slm-copilot.access.log'), 'utf8').catch(() => ''),
    errorLog: () => readFile(path.join(logDir, 'slm-copilot.error.log'), 'utf8').catch(() => ''),
    stop,
    process: proc,
  };
}
