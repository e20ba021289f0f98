// Where an agent runs so that it can reach nothing but the appliance: a network namespace of its own
// (hardening's createNetns: loopback, and a veth /30 to the host; no default route, so any other address
// is unreachable at once). The gateway listens on the host end of the veth. Inside, the resolver is a DNS
// catcher on the host end (each name asked is recorded, answered NXDOMAIN) and `hosts: files dns` (no
// resolver daemon of the host is asked); every process of a run is traced (`strace -f`, connect and send
// calls only) so that each connection it attempts, by name or by address, is on record.
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { canCreateNetns, createNetns, type Netns } from '@slm-copilot/hardening/test-support/netns';
import { reapOnExit } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { startDnsCatcher, type DnsCatcher } from './dns-catcher.js';

export interface Sandbox {
  /** The namespace's name (`ip netns`). */
  name: string;
  /** The host end of the veth: the only address the agent can reach (the gateway listens here). */
  address: string;
  /** The namespace's own address. */
  nsAddress: string;
  dns: DnsCatcher;
  /**
   * The command prefix of one traced run: the namespace, then strace writing its record to `traceFile`,
   * `tracedEnv` added to the traced command's environment only (not to strace's own).
   */
  wrap(traceFile: string, tracedEnv: Record<string, string>): string[];
  destroy(): Promise<void>;
}

const TRACED = 'connect,sendto,sendmsg,sendmmsg';

async function which(command: string): Promise<string | null> {
  const r = await $({ nothrow: true, quiet: true })`sh -c ${`command -v ${command}`}`;
  return r.exitCode === 0 && r.stdout.trim().startsWith('/') ? r.stdout.trim() : null;
}

/** Why agents cannot run sandboxed here (null: they can): namespaces need root, the record needs strace. */
export async function sandboxUnavailable(): Promise<string | null> {
  const netns = await canCreateNetns();
  if (netns) return `no network namespace: ${netns}`;
  if (!(await which('strace'))) return 'strace is not installed (scripts/apt-packages.json lists it)';
  return null;
}

/** The host's nsswitch.conf with host names from files and DNS only (no resolver daemon of the host). */
async function nsswitch(): Promise<string> {
  const host = await readFile('/etc/nsswitch.conf', 'utf8').catch(() => '');
  const lines = host.split('\n').filter((l) => !/^hosts:/.test(l) && l !== '');
  return [...lines, 'hosts: files dns', ''].join('\n');
}

/** Resolver files of sandboxes whose namespace is gone (a test process killed before its cleanup ran). */
async function removeStaleEtc(ip: string): Promise<void> {
  const live = new Set((await $({ quiet: true })`${ip} netns list`).stdout.split('\n').map((l) => l.split(' ')[0]));
  const dirs = await readdir('/etc/netns').catch(() => [] as string[]);
  for (const d of dirs.filter((d) => d.startsWith('slmh-') && !live.has(d))) {
    await rm(path.join('/etc/netns', d), { recursive: true, force: true });
  }
}

/** Creates the namespace, its resolver files (/etc/netns/<name>/, which `ip netns exec` mounts) and the catcher. */
export async function createSandbox(): Promise<Sandbox> {
  const [ip, strace] = [await which('ip'), await which('strace')];
  if (!ip || !strace) throw new Error(`createSandbox needs ip and strace on PATH (found: ${ip}, ${strace})`);
  const ns: Netns = await createNetns();
  await removeStaleEtc(ip);
  const etc = path.join('/etc/netns', ns.name);
  const unreap = reapOnExit(() => execFileSync('rm', ['-rf', etc]));
  let dns: DnsCatcher | undefined;
  const destroy = async () => {
    await dns?.close();
    await rm(etc, { recursive: true, force: true });
    await ns.destroy();
    unreap();
  };
  try {
    await mkdir(etc, { recursive: true });
    await writeFile(path.join(etc, 'resolv.conf'), `nameserver ${ns.hostAddress}\noptions timeout:1 attempts:1\n`);
    await writeFile(path.join(etc, 'nsswitch.conf'), await nsswitch());
    dns = await startDnsCatcher(ns.hostAddress);
  } catch (e) {
    await destroy();
    throw e;
  }
  const catcher = dns;
  return {
    name: ns.name,
    address: ns.hostAddress,
    nsAddress: ns.nsAddress,
    dns: catcher,
    wrap: (traceFile, tracedEnv) => [
      ...[ip, 'netns', 'exec', ns.name],
      // -DD: the tracer is a grandchild in its own process group, so the command is the run's own process
      // (its exit is the run's end) and ending the run's group leaves the tracer to finish its record.
      ...[strace, '-f', '-DD', '-qq', '--seccomp-bpf', '-e', `trace=${TRACED}`, '-e', 'signal=none', '-s', '0'],
      ...['-o', traceFile, ...Object.entries(tracedEnv).flatMap(([k, v]) => ['-E', `${k}=${v}`]), '--'],
    ],
    destroy,
  };
}
