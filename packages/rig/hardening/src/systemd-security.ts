// 6. systemd: `systemd-analyze security --offline=yes` on the engine unit as localai-install renders
// it (both engines) and on Debian's nginx.service with our drop-in (renderNginxHardening).
// The command line: `systemd-security` in cli.ts.
//
// This is the offline check (systemd is not PID 1 on build machines); the appliance's VM test runs
// the real units.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { appliancePaths, parseContext } from '@slm-copilot/context-schema';
import { loadChatTemplate, renderEngine } from '@slm-copilot/localai-install';
import { $ } from 'zx';
import { NGINX_DROP_IN, renderNginxHardening } from '@slm-copilot/nginx-config';
import { devstralFacts, vm16x32 } from '@slm-copilot/localai-install/test-support/fixtures';

export interface SecurityItem {
  ok: boolean;
  setting: string;
  description: string;
  /** Exposure this item adds (0 when ok). */
  weight: number;
}

export interface SecurityReport {
  unit: string;
  exposure: number;
  rating: string;
  /** The ✗ items, heaviest first. */
  open: SecurityItem[];
}

/** Debian 12's nginx.service (nginx 1.22.1-9), used when the host has no nginx package installed. */
export const DEBIAN_NGINX_SERVICE = `[Unit]
Description=A high performance web server and a reverse proxy server
Documentation=man:nginx(8)
After=network-online.target remote-fs.target nss-lookup.target
Wants=network-online.target

[Service]
Type=forking
PIDFile=/run/nginx.pid
ExecStartPre=/usr/sbin/nginx -t -q -g 'daemon on; master_process on;'
ExecStart=/usr/sbin/nginx -g 'daemon on; master_process on;'
ExecReload=/usr/sbin/nginx -g 'daemon on; master_process on;' -s reload
ExecStop=-/sbin/start-stop-daemon --quiet --stop --retry QUIT/5 --pidfile /run/nginx.pid
TimeoutStopSec=5
KillMode=mixed

[Install]
WantedBy=multi-user.target
`;

export function parseSecurity(unit: string, output: string): SecurityReport {
  const m = /Overall exposure level for \S+: ([\d.]+) (\S+)/.exec(output);
  if (!m) throw new Error(`systemd-analyze security printed no exposure for ${unit}:\n${output.slice(-2000)}`);
  const open: SecurityItem[] = [];
  for (const line of output.split('\n')) {
    const x = /^✗ (\S+)\s+(.*?)\s+([\d.]+)\s*$/.exec(line.trim());
    if (x) open.push({ ok: false, setting: x[1]!, description: x[2]!, weight: Number(x[3]) });
  }
  open.sort((a, b) => b.weight - a.weight);
  return { unit, exposure: Number(m[1]), rating: m[2]!, open };
}

async function analyze(args: string[], unit: string): Promise<SecurityReport> {
  const r = await $({
    nothrow: true,
    quiet: true,
    env: { ...process.env, SYSTEMD_COLORS: '0', LC_ALL: 'C.UTF-8' },
  })`systemd-analyze security --offline=yes --no-pager ${args}`;
  return parseSecurity(unit, r.stdout + r.stderr);
}

// The unit as rendered for Devstral on the marketplace's VM size (localai-install's own test facts).
const [facts, host] = [devstralFacts, vm16x32];

/** The engine unit for `engine`, rendered by localai-install for the default context. */
export async function engineSecurity(engine: 'localai' | 'llama-server'): Promise<SecurityReport> {
  const dir = await mkdtemp(path.join(tmpdir(), `hardening-unit-${engine}-`));
  try {
    const render = renderEngine({
      config: parseContext({ ONEAPP_COPILOT_ENGINE: engine }),
      model: facts,
      host,
      paths: appliancePaths(),
      chatTemplate: await loadChatTemplate(),
    });
    const unit = render.files.find((f) => f.path.endsWith(`/${render.unit}`))!;
    const file = path.join(dir, render.unit);
    // The offline check resolves ExecStart: point it at a binary that exists here (the rest is as rendered).
    await writeFile(file, unit.text.replace(/^ExecStart=\S+/m, 'ExecStart=/bin/true'));
    return await analyze([file], `${render.unit} (${engine})`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** nginx.service (the host's Debian unit, else a copy of Debian 12's) with and without our drop-in. */
export async function nginxSecurity(): Promise<{ stock: SecurityReport; hardened: SecurityReport; dropIn: string }> {
  const root = await mkdtemp(path.join(tmpdir(), 'hardening-nginx-unit-'));
  try {
    const unitDir = path.join(root, 'etc/systemd/system');
    await mkdir(unitDir, { recursive: true });
    const debian = '/lib/systemd/system/nginx.service';
    if (existsSync(debian)) await copyFile(debian, path.join(unitDir, 'nginx.service'));
    else await writeFile(path.join(unitDir, 'nginx.service'), DEBIAN_NGINX_SERVICE);
    const stock = await analyze([`--root=${root}`, 'nginx.service'], 'nginx.service (Debian)');
    const dropIn = renderNginxHardening({ systemdDir: unitDir });
    await mkdir(path.dirname(dropIn.path), { recursive: true });
    await writeFile(dropIn.path, dropIn.text);
    const hardened = await analyze([`--root=${root}`, 'nginx.service'], `nginx.service + ${NGINX_DROP_IN}`);
    return { stock, hardened, dropIn: await readFile(dropIn.path, 'utf8') };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** Why each item still open on the hardened nginx cannot be closed (keyed by systemd-analyze's setting name). */
export const NGINX_OPEN_REASONS: Record<string, string> = {
  'PrivateNetwork=': 'nginx is the gateway: it serves the network',
  'User=/DynamicUser=':
    'the master runs as root to bind 80/443 and start the workers as www-data ' +
    "(Debian's unit; the workers do run unprivileged)",
  'RestrictAddressFamilies=~AF_(INET|INET6)': 'it serves TCP over IPv4 and IPv6',
  'RestrictAddressFamilies=~AF_UNIX': 'master and workers talk over socketpair(AF_UNIX) channels',
  'CapabilityBoundingSet=~CAP_SET(UID|GID|PCAP)': 'CAP_SETUID/CAP_SETGID: start the workers as www-data',
  'CapabilityBoundingSet=~CAP_(CHOWN|FSETID|SETFCAP)': 'CAP_CHOWN: its temp directories are handed to www-data',
  'CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)':
    "CAP_DAC_OVERRIDE: open its logs, which Debian's logrotate re-creates www-data:adm 0640 " +
    '(without it nginx does not even start after the first rotation)',
  'CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)': 'CAP_NET_BIND_SERVICE: ports 80 and 443',
  'PrivateUsers=': 'a user namespace would take away the real root capabilities listed above',
  'IPAddressDeny=': "clients may come from any address (the API is for the team; the firewall is the operator's)",
  'SystemCallFilter=~@privileged':
    'chown, setuid, setgid, setgroups are in @privileged and are needed (see the capabilities)',
  'RootDirectory=/RootImage=':
    "Debian's nginx from the host's root file system; ProtectSystem=strict makes it read-only instead",
  'DeviceAllow=': 'ProtectClock= adds the char-rtc read rule by itself',
  'UMask=': 'logs stay group-readable for adm (0027), as Debian expects',
};

export function formatReport(r: SecurityReport, reasons: Record<string, string> = {}): string {
  const lines = [`${r.unit}: exposure ${r.exposure} ${r.rating}`];
  for (const o of r.open)
    lines.push(`  ✗ ${o.setting} (${o.weight})${reasons[o.setting] ? ` — ${reasons[o.setting]}` : ''}`);
  return lines.join('\n');
}

/** The engine unit (both engines) and nginx.service (stock and with the drop-in). */
export async function allSecurityReports() {
  const [localai, llama, nginx] = await Promise.all([
    engineSecurity('localai'),
    engineSecurity('llama-server'),
    nginxSecurity(),
  ]);
  return { localai, llama, nginx };
}

export function formatAll(r: Awaited<ReturnType<typeof allSecurityReports>>): string {
  return [
    formatReport(r.localai),
    formatReport(r.llama),
    formatReport(r.nginx.stock),
    formatReport(r.nginx.hardened, NGINX_OPEN_REASONS),
  ].join('\n');
}
