// Test support: a network namespace of our own joined to the host by a veth pair, so that the
// gateway and the engine run on a "machine" with a non-loopback address that the host reaches
// like a client on the network would. Only addresses inside 10.231.0.0/16 that we assign are used.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { reapOnExit } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import type { RecordedRequest } from '@slm-copilot/nginx-config/test-support/upstream-double';

export interface Netns {
  name: string;
  /** The host side of the veth pair (the "client network"). */
  hostAddress: string;
  /** The namespace's own veth address (the VM's address as clients see it). */
  nsAddress: string;
  /** Command prefix that runs a program inside the namespace. */
  exec: string[];
  destroy(): Promise<void>;
}

const PREFIX = 'slmh';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether this process may create namespaces (root with CAP_SYS_ADMIN and iproute2). */
export async function canCreateNetns(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'not root';
  const probe = `${PREFIX}-probe-${process.pid}`;
  const r = await $({ nothrow: true, quiet: true })`ip netns add ${probe}`;
  if (r.exitCode !== 0) return `ip netns add failed: ${r.stderr.trim()}`;
  await $({ nothrow: true, quiet: true })`ip netns del ${probe}`;
  return null;
}

let counter = 0;
let subnet: number | undefined;

/**
 * Creates `slmh-<pid>-<n>` with a veth pair 10.231.<x>.<4n+1>/30 (host) ↔ <4n+2>/30 (namespace),
 * loopback up. Namespaces left behind by test processes that died are removed first.
 */
export async function createNetns(): Promise<Netns> {
  const list = (await $({ nothrow: true, quiet: true })`ip netns list`).stdout;
  for (const line of list.split('\n')) {
    const m = new RegExp(`^(${PREFIX}-(\\d+)-\\d+)\\b`).exec(line.trim());
    if (m && !alive(Number(m[2]))) await $({ nothrow: true, quiet: true })`ip netns del ${m[1]!}`;
  }
  const n = counter++;
  if (n > 60) throw new Error('too many namespaces in one process');
  const name = `${PREFIX}-${process.pid}-${n}`;
  const tag = `${(process.pid % 100_000).toString(36)}${n.toString(36)}`;
  const [hostIf, nsIf] = [`sh${tag}h`, `sh${tag}n`];
  // This process's /24 of 10.231/16: one that no interface of this host uses yet (another test process may run).
  if (subnet === undefined) {
    const routes = (await $({ nothrow: true, quiet: true })`ip -4 route show`).stdout;
    const used = new Set([...routes.matchAll(/^10\.231\.(\d+)\./gm)].map((m) => Number(m[1])));
    let x = process.pid % 250;
    for (let i = 0; used.has(x) && i < 250; i++) x = (x + 1) % 250;
    subnet = x;
  }
  const x = subnet;
  const hostAddress = `10.231.${x}.${4 * n + 1}`;
  const nsAddress = `10.231.${x}.${4 * n + 2}`;
  const steps: string[][] = [
    ['ip', 'netns', 'add', name],
    ['ip', 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf],
    ['ip', 'link', 'set', nsIf, 'netns', name],
    ['ip', 'addr', 'add', `${hostAddress}/30`, 'dev', hostIf],
    ['ip', 'link', 'set', hostIf, 'up'],
    ['ip', 'netns', 'exec', name, 'ip', 'addr', 'add', `${nsAddress}/30`, 'dev', nsIf],
    ['ip', 'netns', 'exec', name, 'ip', 'link', 'set', nsIf, 'up'],
    ['ip', 'netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up'],
  ];
  const unreap = reapOnExit(() => execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' }));
  const destroy = async () => {
    // Deleting the namespace also deletes the veth pair.
    await $({ nothrow: true, quiet: true })`ip netns del ${name}`;
    await $({ nothrow: true, quiet: true })`ip link del ${hostIf}`;
    unreap();
  };
  for (const s of steps) {
    const r = await $({ nothrow: true, quiet: true })`${s}`;
    if (r.exitCode !== 0) {
      await destroy();
      throw new Error(`${s.join(' ')}: ${r.stderr.trim()}`);
    }
  }
  return { name, hostAddress, nsAddress, exec: ['ip', 'netns', 'exec', name], destroy };
}

export interface NsUpstreamDouble {
  port: number;
  /** Requests the double received, in order (streamed from the child process). */
  requests: RecordedRequest[];
  /** Waits until the child has reported every request it received so far. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const packageDir = path.resolve(here, '../..');

/**
 * nginx-config's upstream test double, run in its own Node process inside the namespace on
 * 127.0.0.1:`port`; every request it records is reported back as a JSON line.
 */
export async function startNsUpstreamDouble(ns: Netns, port: number): Promise<NsUpstreamDouble> {
  const script = path.join(here, 'ns-double-main.ts');
  const child: ChildProcess = spawn(
    ns.exec[0]!,
    [...ns.exec.slice(1), process.execPath, '--conditions=source', '--import', 'tsx', script, String(port)],
    {
      cwd: packageDir,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const unreap = reapOnExit(() => child.kill('SIGKILL'));
  const requests: RecordedRequest[] = [];
  let buf = '';
  let err = '';
  let pings = 0;
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  let ready: (p: number) => void;
  const started = new Promise<number>((r) => (ready = r));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.startsWith('{')) continue;
      const msg = JSON.parse(line) as { port?: number; request?: RecordedRequest; pong?: number };
      if (msg.port) ready(msg.port);
      if (msg.request) requests.push(msg.request);
      if (msg.pong !== undefined) for (const w of waiters.splice(0).filter((w) => w.n <= msg.pong!)) w.resolve();
    }
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(
      () => reject(new Error(`the upstream double did not start in the namespace within 60 s:\n${err}`)),
      60_000,
    ).unref(),
  );
  const got = await Promise.race([
    started,
    timeout,
    exited.then(() => Promise.reject(new Error(`the upstream double exited:\n${err}`))),
  ]);
  return {
    port: got,
    requests,
    // A ping travels the same ordered pipe as the request lines: once it comes back, all earlier lines are in.
    settle: () =>
      new Promise<void>((resolve) => {
        const n = ++pings;
        waiters.push({ n, resolve });
        child.stdin!.write(`${n}\n`);
      }),
    close: async () => {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
      unreap();
    },
  };
}
