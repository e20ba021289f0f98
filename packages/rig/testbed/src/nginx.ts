// The real Debian nginx in the foreground on a render under a temp prefix: what the gateway tests,
// the hardening suite and the bench all run (never the system's nginx.service).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import path from 'node:path';
import { reapOnExit } from '@slm-copilot/task-kit';

export const NGINX = process.env.SLM_COPILOT_TESTBED_NGINX ?? '/usr/sbin/nginx';

/** A main nginx.conf in place of Debian's: pid, temp paths and the main error log under `runDir`, then `include`. */
export function nginxMainConf(runDir: string, include: string, errorLogLevel: 'info' | 'warn' = 'info'): string {
  const t = (n: string) => path.join(runDir, n);
  return `worker_processes 1;
pid ${t('nginx.pid')};
error_log ${t('main-error.log')} ${errorLogLevel};
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path ${t('body')};
    proxy_temp_path ${t('proxy')};
    fastcgi_temp_path ${t('fastcgi')};
    uwsgi_temp_path ${t('uwsgi')};
    scgi_temp_path ${t('scgi')};
    include ${include};
}
`;
}

export interface NginxProcess {
  process: ChildProcess;
  /** `nginx` with this instance's prefix, error log and config (append `-t -q`, `-s reload`, …). */
  baseCommand: string[];
  stop(): Promise<void>;
}

export interface StartNginxOptions {
  /** Where the main config, pid file, temp dirs and main error log go (created). */
  runDir: string;
  /** What the main config includes (a glob of site files). */
  include: string;
  errorLogLevel?: 'info' | 'warn';
  /** The port that must accept connections before this resolves. */
  readyPort: number;
  readyAddress?: string;
  readyTimeoutMs?: number;
  /** Command prefix nginx runs under, e.g. `['ip', 'netns', 'exec', ns]`. */
  wrap?: string[];
}

function accepts(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(port, host);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts nginx in the foreground; resolves once `readyPort` accepts; rejects with nginx's output if it exits or
 * never listens.
 */
export async function startNginx(opts: StartNginxOptions): Promise<NginxProcess> {
  await mkdir(opts.runDir, { recursive: true });
  const confFile = path.join(opts.runDir, 'nginx.conf');
  const mainErrorLog = path.join(opts.runDir, 'main-error.log');
  await writeFile(confFile, nginxMainConf(opts.runDir, opts.include, opts.errorLogLevel));
  const baseCommand = [NGINX, '-p', opts.runDir, '-e', mainErrorLog, '-c', confFile];
  const argv = [...(opts.wrap ?? []), ...baseCommand, '-g', 'daemon off;'];
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const unregister = reapOnExit(() => proc.kill('SIGKILL'));
  let output = '';
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  let exited = false;
  const done = new Promise<void>((resolve) =>
    proc.on('exit', () => {
      exited = true;
      unregister();
      resolve();
    }),
  );
  const stop = async () => {
    if (exited) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(timer);
  };
  const timeoutMs = opts.readyTimeoutMs ?? 15_000;
  const t0 = Date.now();
  for (;;) {
    if (exited)
      throw new Error(
        `nginx exited before listening:\n${output}\n${await readFile(mainErrorLog, 'utf8').catch(() => '')}`,
      );
    if (Date.now() - t0 > timeoutMs) {
      await stop();
      throw new Error(`nginx did not listen on ${opts.readyPort} within ${timeoutMs / 1000} s:\n${output}`);
    }
    if (await accepts(opts.readyPort, opts.readyAddress ?? '127.0.0.1')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { process: proc, baseCommand, stop };
}
