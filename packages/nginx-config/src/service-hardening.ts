import path from 'node:path';
import { SANDBOX_KERNEL_DIRECTIVES, SANDBOX_RESTRICT_DIRECTIVES, type FileSpec } from '@slm-copilot/task-kit';

export const NGINX_DROP_IN = 'nginx.service.d/slm-copilot-hardening.conf';

/**
 * Capabilities nginx's master keeps, each with why. Checked on the real nginx (systemd-security.test.ts,
 * under setpriv's bounding set): with these it starts, serves, reopens rotated logs, reloads and stops;
 * without any one of them one of those breaks. CAP_KILL is not needed: the master tells its workers
 * (www-data) what to do over its socketpair channels, and systemd kills leftovers itself.
 */
export const NGINX_CAPABILITIES: ReadonlyArray<{ cap: string; why: string }> = [
  { cap: 'CAP_NET_BIND_SERVICE', why: 'listen on ports 80 and 443' },
  { cap: 'CAP_SETUID', why: 'start the workers as www-data' },
  { cap: 'CAP_SETGID', why: 'start the workers as www-data (setgid, initgroups)' },
  { cap: 'CAP_CHOWN', why: 'hand its temp directories (client bodies, proxy) to www-data' },
  {
    cap: 'CAP_DAC_OVERRIDE',
    why: "open its logs: Debian's logrotate re-creates them www-data:adm 0640, which root may not open without it",
  },
];

export interface NginxHardeningOptions {
  /** Root prefix of the systemd directory ('' in the appliance). */
  systemdDir?: string;
  /** Directories nginx writes (logs, its temp dirs, the pid file's dir). */
  writablePaths?: readonly string[];
}

/**
 * A drop-in for Debian's nginx.service: the master keeps only the capabilities it needs and runs in a
 * read-only, device-less, kernel-protected sandbox. nginx still runs as root (it must bind 80/443 and
 * switch to www-data), so PrivateUsers/DynamicUser cannot apply; it serves the network, so neither can
 * PrivateNetwork or an IP allow-list.
 */
export function renderNginxHardening(options: NginxHardeningOptions = {}): FileSpec {
  const systemdDir = options.systemdDir ?? '/etc/systemd/system';
  const writable = options.writablePaths ?? ['/var/log/nginx', '/var/lib/nginx', '/run'];
  for (const p of writable)
    if (!/^\/[A-Za-z0-9._/-]*$/.test(p)) throw new Error(`internal: unsafe path ${JSON.stringify(p)} for a unit file`);
  const text = [
    '# SLM-Copilot: hardening for nginx (the gateway). Rendered by @slm-copilot/hardening; edits are overwritten.',
    '[Service]',
    ...NGINX_CAPABILITIES.map((c) => `# ${c.cap}: ${c.why}`),
    `CapabilityBoundingSet=${NGINX_CAPABILITIES.map((c) => c.cap).join(' ')}`,
    'AmbientCapabilities=',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    `ReadWritePaths=${writable.join(' ')}`,
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateMounts=yes',
    'PrivateDevices=yes',
    ...SANDBOX_KERNEL_DIRECTIVES,
    'ProcSubset=pid',
    ...SANDBOX_RESTRICT_DIRECTIVES,
    'KeyringMode=private',
    'UMask=0027',
    'SystemCallArchitectures=native',
    'SystemCallFilter=@system-service',
    // @resources (setrlimit, setpriority, sched_setaffinity) is only used with worker_rlimit_nofile,
    // worker_priority or worker_cpu_affinity, which neither Debian's nginx.conf nor ours sets.
    'SystemCallFilter=~@clock @cpu-emulation @debug @module @mount @obsolete @raw-io @reboot @resources @swap',
    'SystemCallErrorNumber=EPERM',
    '',
  ].join('\n');
  return { path: path.join(systemdDir, NGINX_DROP_IN), text, mode: 0o644 };
}
