// Test support: Debian's Pebble (a small ACME CA for tests) and pebble-challtestsrv as its DNS,
// both on loopback ports that were free when asked for (never a fixed port; a start that lost a port
// to another process is retried on fresh ones). Pebble's http-01 validation goes to the gateway's HTTP port.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { appliancePaths } from '@slm-copilot/context-schema';
import { reapOnExit } from '@slm-copilot/task-kit';
import { ensureSelfSigned } from '../src/tls.js';
import { httpsGet } from './client.js';
import { freePort } from './nginx.js';
import { waitFor } from './poll.js';
import { quietLog as quiet } from '@slm-copilot/task-kit/test-support/log';

export interface Pebble {
  directory: string;
  /** CA bundle that verifies Pebble's own HTTPS listener (for certbot's REQUESTS_CA_BUNDLE). */
  caBundle: string;
  /** Pebble's issuing root (regenerated on every launch), to verify the certificates it issues. */
  issuingRoot(): Promise<string>;
  output(): string;
  stop(): Promise<void>;
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { proc: ChildProcess; out: () => string; done: Promise<void> } {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const unregister = reapOnExit(() => proc.kill('SIGKILL'));
  const done = new Promise<void>((resolve) =>
    proc.on('exit', () => {
      unregister();
      resolve();
    }),
  );
  return { proc, out: () => out, done };
}

async function stopProc(p: { proc: ChildProcess; done: Promise<void> }): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  p.proc.kill('SIGTERM');
  const t = setTimeout(() => p.proc.kill('SIGKILL'), 3000);
  await p.done;
  clearTimeout(t);
}

type Proc = ReturnType<typeof run>;
const exited = (p: Proc) => p.proc.exitCode !== null || p.proc.signalCode !== null;

/** Pebble and its DNS on fresh ports; resolves once Pebble's directory answers, rejects if either exits. */
async function launch(
  opts: { dir: string; httpPort: number },
  tls: { certificate: string; key: string },
  ca: string,
): Promise<{ pebble: Proc; dns: Proc; acmePort: number; mgmtPort: number }> {
  const [acmePort, mgmtPort, dnsPort, dnsMgmtPort, tlsPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const config = path.join(opts.dir, 'pebble-config.json');
  await writeFile(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: tls.certificate,
        privateKey: tls.key,
        httpPort: opts.httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  const off = ['-http01', '', '-https01', '', '-tlsalpn01', ''];
  const dns = run('pebble-challtestsrv', [
    ...['-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''],
    ...['-dns01', `127.0.0.1:${dnsPort}`, ...off, '-management', `127.0.0.1:${dnsMgmtPort}`],
  ]);
  const pebble = run('pebble', ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`], {
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: '0',
  });
  const directory = `https://127.0.0.1:${acmePort}/dir`;
  const stop = async () => {
    await stopProc(pebble);
    await stopProc(dns);
  };
  // done when the directory answers, or as soon as either process has exited (then it is a failure)
  const up = async () =>
    exited(pebble) || exited(dns) || (await httpsGet(directory, { ca, timeoutMs: 1000 })).status === 200;
  await waitFor("Pebble's ACME directory", up, { timeoutMs: 30_000, intervalMs: 100 }).catch(async (e: Error) => {
    await stop();
    throw e;
  });
  if (exited(pebble) || exited(dns)) {
    await stop();
    throw new Error(`pebble did not start:\n${pebble.out()}\n${dns.out()}`);
  }
  return { pebble, dns, acmePort, mgmtPort };
}

export async function startPebble(opts: { dir: string; httpPort: number }): Promise<Pebble> {
  await mkdir(opts.dir, { recursive: true });
  // Pebble's HTTPS certificate: a throwaway CA + leaf for 127.0.0.1/localhost (our own code, other root).
  const tlsPaths = appliancePaths(path.join(opts.dir, 'pebble-tls'));
  const tls = await ensureSelfSigned({ paths: tlsPaths, hostname: null, ipAddresses: [], log: quiet });
  const ca = await readFile(tlsPaths.tls.caCert, 'utf8');
  let started: Awaited<ReturnType<typeof launch>> | undefined;
  for (let tries = 1; !started; tries++) {
    started = await launch(opts, tls.served, ca).catch((error: Error) => {
      // another process took one of the ports between freePort() and the bind: try fresh ones
      if (tries < 3 && /address already in use/i.test(error.message)) return undefined;
      throw error;
    });
  }
  const { pebble, dns, acmePort, mgmtPort } = started;
  return {
    directory: `https://127.0.0.1:${acmePort}/dir`,
    caBundle: tlsPaths.tls.caCert,
    issuingRoot: async () => (await httpsGet(`https://127.0.0.1:${mgmtPort}/roots/0`, { ca })).body,
    output: () => pebble.out(),
    stop: async () => {
      await stopProc(pebble);
      await stopProc(dns);
    },
  };
}
