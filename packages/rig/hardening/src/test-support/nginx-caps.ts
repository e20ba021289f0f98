// Test support: the real nginx, as root with `user www-data`, started under a capability bounding
// set (setpriv, as systemd's CapabilityBoundingSet= would) inside a network namespace so that it can
// bind 80 and 443. Runs what the appliance does with it — start, serve, log rotation + reopen
// (USR1), reload (HUP), graceful stop (QUIT) — and says which step failed.
import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { appliancePaths, parseContext } from '@slm-copilot/context-schema';
import { ensureSelfSigned, renderGateway } from '@slm-copilot/nginx-config';
import { mainConf, NGINX, tempRoot } from '@slm-copilot/nginx-config/test-support/nginx';
import { applyFileSet, reapOnExit } from '@slm-copilot/task-kit';
import type { Netns } from './netns.js';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';
import { rawHttps, rawHttp, tcpProbe } from './raw-https.js';

export interface CapsScenario {
  caps: string[];
  steps: Record<'start' | 'serve' | 'reopen' | 'reload' | 'stop', boolean>;
  /** What nginx logged at [emerg]/[alert]/[crit] level. */
  errors: string[];
}

const KEY = 'sk-hardening-caps-0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it is true (→ true), throws (→ false at once) or `ms` pass (→ false). */
async function until(fn: () => Promise<boolean>, ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    try {
      if (await fn()) return true;
    } catch {
      return false;
    }
    await sleep(100);
  }
  return false;
}

export async function nginxUnderCaps(ns: Netns, caps: readonly string[]): Promise<CapsScenario> {
  const root = await tempRoot('hardening-caps');
  const paths = appliancePaths(root);
  const ss = await ensureSelfSigned({
    paths,
    hostname: 'copilot.example.test',
    ipAddresses: [ns.nsAddress],
    log: quietLog,
  });
  const ca = await readFile(paths.tls.caCert, 'utf8');
  const logDir = path.join(root, 'var/log/nginx');
  const config = parseContext({ ONEAPP_COPILOT_PASSWORD: KEY, ONEAPP_COPILOT_ENGINE: 'llama-server' });
  await applyFileSet(
    '/',
    renderGateway(config, {
      paths,
      keys: { main: KEY, extra: [] },
      tls: ss.served,
      listenAddresses: ['*'],
      keyFileOwner: null,
      logDir,
    }),
  );
  // As Debian lays it out: /var/log/nginx root:adm 0755; logrotate re-creates the logs www-data:adm 0640.
  await mkdir(logDir, { recursive: true });
  await chown(logDir, 0, 4);
  await chmod(logDir, 0o755);
  const logs = ['slm-copilot.access.log', 'slm-copilot.error.log', 'error.log'].map((n) => path.join(logDir, n));
  const rotate = async () => {
    for (const l of logs) {
      await rename(l, `${l}.1`).catch(() => undefined);
      await writeFile(l, '');
      await chown(l, 33, 4);
      await chmod(l, 0o640);
    }
  };
  await rotate();
  const runDir = path.join(root, 'run/nginx');
  await mkdir(runDir, { recursive: true });
  const conf = path.join(runDir, 'nginx.conf');
  await writeFile(
    conf,
    `user www-data;\n${mainConf(root, paths).replace(/^error_log .*$/m, `error_log ${logs[2]} info;`)}`,
  );
  const bounding = ['-all', ...caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
  const argv = [
    ...ns.exec,
    'setpriv',
    `--bounding-set=${bounding}`,
    '--no-new-privs',
    NGINX,
    '-p',
    runDir,
    '-e',
    logs[2]!,
    '-c',
    conf,
    '-g',
    'daemon off;',
  ];
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const unreap = reapOnExit(() => proc.kill('SIGKILL'));
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  let gone = false;
  void exited.then(() => {
    gone = true;
    unreap();
  });
  const steps: CapsScenario['steps'] = { start: false, serve: false, reopen: false, reload: false, stop: false };
  const target = { address: ns.nsAddress, port: 443, servername: 'copilot.example.test', ca };
  const get = async () =>
    (
      await rawHttps(
        target,
        'GET /v1/models HTTP/1.1\r\nHost: copilot.example.test\r\n' +
          `Authorization: Bearer ${KEY}x\r\nConnection: close\r\n\r\n`,
        3000,
      )
    ).status;
  const accessLines = async () => (await readFile(logs[0]!, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
  try {
    steps.start = await until(async () => {
      if (gone) throw new Error('exited');
      return (
        (await tcpProbe(ns.nsAddress, 443, 1000)) === 'open' && (await tcpProbe(ns.nsAddress, 80, 1000)) === 'open'
      );
    }, 10_000);
    if (!steps.start)
      return { caps: [...caps], steps, errors: errorsOf(out + (await readFile(logs[2]!, 'utf8').catch(() => ''))) };
    const plain = await rawHttp(
      ns.nsAddress,
      80,
      'GET /x HTTP/1.1\r\nHost: copilot.example.test\r\nConnection: close\r\n\r\n',
      3000,
    ).then(
      (r) => r.status,
      () => 0,
    );
    steps.serve =
      (await get().catch(() => 0)) === 401 &&
      plain === 301 &&
      (await until(async () => (await accessLines()) >= 2, 3000));
    const pid = Number((await readFile(path.join(runDir, 'nginx.pid'), 'utf8')).trim());
    if (!steps.serve) {
      // Nothing more to learn (no worker serves): stop it.
      process.kill(pid, 'SIGQUIT');
      steps.stop = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
      return { caps: [...caps], steps, errors: errorsOf(out + (await readFile(logs[2]!, 'utf8').catch(() => ''))) };
    }
    // logrotate: move the logs away, create new www-data:adm 0640 ones, USR1; the next request must land in
    // the new file.
    await rotate();
    process.kill(pid, 'SIGUSR1');
    await sleep(500);
    await get().catch(() => 0);
    steps.reopen = await until(async () => (await accessLines()) >= 1, 3000);
    process.kill(pid, 'SIGHUP');
    await sleep(800);
    steps.reload =
      !gone &&
      (await get().catch(() => 0)) === 401 &&
      !/\[(emerg|alert)\].*(reconfigur|start worker)/.test(await readFile(logs[2]!, 'utf8').catch(() => ''));
    process.kill(pid, 'SIGQUIT');
    steps.stop = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
  } finally {
    if (!gone) proc.kill('SIGKILL');
    await exited;
  }
  const errorLog =
    (await readFile(logs[2]!, 'utf8').catch(() => '')) + (await readFile(`${logs[2]}.1`, 'utf8').catch(() => ''));
  return { caps: [...caps], steps, errors: errorsOf(out + errorLog) };
}

function errorsOf(text: string): string[] {
  return text
    .split('\n')
    .filter((l) => /\[(emerg|alert|crit)\]/.test(l))
    .map((l) => l.replace(/^.*?\[(emerg|alert|crit)\] \d+#\d+: /, '[$1] '))
    .slice(0, 5);
}
