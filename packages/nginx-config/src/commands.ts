// The nginx-config commands (task-kit's runner): render, install, tls ensure / fingerprint / letsencrypt.
// Every flag is checked before anything is read or written; the bin (cli.ts) only runs main().
import path from 'node:path';
import {
  appliancePaths,
  loadContext,
  parseContext,
  type AppliancePaths,
  type Config,
} from '@slm-copilot/context-schema';
import {
  ExitCode,
  exists,
  gatherHostFacts,
  resolveRoot,
  runCommand,
  runSubcommands,
  UsageError,
  type Logger,
} from '@slm-copilot/task-kit';
import { resolveApiKeys } from './api-key.js';
import { installGateway } from './install.js';
import { gatewayFiles, renderGateway, type ServedCertificate } from './render.js';
import { TCP_PORT } from './nginx-syntax.js';
import {
  canonicalIp,
  certbotDirs,
  currentLetsEncrypt,
  fingerprintOf,
  letsEncryptRequest,
  obtainLetsEncrypt,
  prepareTls,
  RENEW_BEFORE_DAYS,
  type TlsPlan,
} from './tls.js';

const TOOL = 'nginx-config';
const CONTEXT = '/var/run/one-context/context.sh';

const contextOptions = {
  'context-file': { type: 'string', short: 'f' },
  root: { type: 'string' },
} as const;
const contextHelp = {
  'context-file': 'an OpenNebula context.sh to read (never executed) instead of the ONEAPP_* environment',
  root: 'root prefix of the appliance layout (default: SLM_COPILOT_ROOT or /)',
};
const ipOption = { ip: { type: 'string', multiple: true } } as const;

const examples = (...lines: string[]) => `Examples:\n${lines.map((l) => `  ${TOOL} ${l}`).join('\n')}`;
const text = (values: Record<string, unknown>, name: string) =>
  typeof values[name] === 'string' ? (values[name] as string) : undefined;

/** `--<name>` as a TCP port (usage error otherwise). */
function port(values: Record<string, unknown>, name: string, fallback: number): number {
  const value = text(values, name);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < TCP_PORT.min || n > TCP_PORT.max) {
    throw new UsageError(`--${name} must be a port from ${TCP_PORT.min} to ${TCP_PORT.max}, got "${value}"`);
  }
  return n;
}

/** `--ip` values, checked (usage error for anything that is not an IP address). */
function ips(values: Record<string, unknown>): string[] {
  const given = (values.ip as string[] | undefined) ?? [];
  for (const ip of given) {
    try {
      canonicalIp(ip);
    } catch {
      throw new UsageError(`--ip must be an IPv4 or IPv6 address, got "${ip}"`);
    }
  }
  return given;
}

const ipAddresses = async (given: string[]) => (given.length ? given : (await gatherHostFacts()).ipAddresses);

function rootPaths(values: Record<string, unknown>): { root: string; paths: AppliancePaths } {
  const root = resolveRoot(text(values, 'root'));
  return { root, paths: appliancePaths(root === '/' ? '' : root) };
}

/** The context (file or environment) as a Config, its secrets registered with the logger, and the paths. */
async function context(values: Record<string, unknown>, log: Logger) {
  const config = parseContext(await loadContext(text(values, 'context-file'), log));
  if (config.apiKey) log.addSecret(config.apiKey);
  for (const k of config.extraApiKeys) log.addSecret(k);
  return { config, ...rootPaths(values) };
}

const json = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

/** The certificate to serve now without creating anything (render is a dry run). */
async function servedNow(config: Config, paths: AppliancePaths): Promise<ServedCertificate> {
  if (config.tls.mode === 'letsencrypt' && config.hostname) {
    const le = await currentLetsEncrypt({
      hostname: config.hostname,
      acmeDirectory: config.tls.acmeDirectory,
      dirs: certbotDirs(paths),
    });
    if ('served' in le) return le.served;
  }
  return { certificate: paths.tls.cert, key: paths.tls.key };
}

const render = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} render`,
      summary: 'print the gateway files rendered from the context (the key file is masked); writes nothing',
      usage: `${TOOL} render [--context-file context.sh] [--root DIR] [--http-port 80]`,
      options: { ...contextOptions, 'http-port': { type: 'string' } },
      details: examples(`render --context-file ${CONTEXT}`, 'render --root /tmp/appliance --http-port 8080'),
    },
    { ...contextHelp, 'http-port': 'plain-HTTP port for the redirect and ACME challenges (default 80)' },
    argv,
    async ({ values, log }) => {
      const httpPort = port(values, 'http-port', 80);
      const { config, paths } = await context(values, log);
      const keys = await resolveApiKeys(config, paths).catch(() => ({
        main: 'sk-placeholder-key-not-resolved',
        extra: config.extraApiKeys,
      }));
      log.addSecret(keys.main);
      const files = renderGateway(config, { paths, keys, tls: await servedNow(config, paths), httpPort });
      const keyFile = gatewayFiles(paths).keys;
      for (const f of files) {
        const mode = `mode ${(f.mode ?? 0o644).toString(8)}${f.owner ? `, ${f.owner}` : ''}`;
        process.stdout.write(`# ==> ${f.path} (${mode})\n`);
        process.stdout.write(
          f.path === keyFile ? `# secret: ${keys.extra.length + 1} API key(s), not printed\n\n` : `${f.text}\n`,
        );
      }
    },
  );

/** install: every flag checked first, then key → certificate → render → nginx -t → reload (→ ACME). */
async function runInstall(values: Record<string, unknown>, log: Logger): Promise<void> {
  const httpPort = port(values, 'http-port', 80);
  const given = ips(values);
  const nginx = text(values, 'nginx') ?? 'nginx';
  const { config, paths, root } = await context(values, log);
  const rootConf = path.join(paths.nginx.confDir, 'nginx.conf');
  const conf = text(values, 'nginx-conf') ?? (root !== '/' && (await exists(rootConf)) ? rootConf : undefined);
  const confArgs = conf ? ['-c', conf] : [];
  const reloadCommand = text(values, 'reload-command') ?? [nginx, ...confArgs, '-s', 'reload'].join(' ');
  const keys = await resolveApiKeys(config, paths, { generate: Boolean(values['generate-key']) });
  log.addSecret(keys.main);
  if (keys.generated) log.info(`generated an API key and kept it in ${paths.apiKeyFile} (0600)`);
  const plan: TlsPlan = await prepareTls(config, { paths, ipAddresses: await ipAddresses(given) });
  const apply = async (served: ServedCertificate) =>
    installGateway(renderGateway(config, { paths, keys, tls: served, httpPort }), {
      root: '/',
      nginxBinary: nginx,
      testConfigCommand: [nginx, '-t', '-q', ...confArgs],
      reload: values['no-reload'] ? null : ['sh', '-c', reloadCommand],
      removeFile: path.join(paths.nginx.confDir, 'sites-enabled/default'),
      directories: [paths.nginx.acmeWebroot, path.join(root, 'var/log/nginx')],
      log,
    });
  const result = await apply(plan.served);
  const summary: Record<string, unknown> = {
    changed: result.changed,
    reloaded: result.reloaded,
    tls: plan.kind,
    fingerprint: plan.fingerprint,
  };
  if (plan.selfSigned) summary.caCertificate = paths.tls.caCert;
  if (plan.letsEncryptPending && !values['no-reload'] && config.hostname) {
    const le = await obtainLetsEncrypt(letsEncryptRequest(config, paths, { deployHook: reloadCommand, log }));
    if (le.ok) {
      await apply(le.served);
      Object.assign(summary, { tls: 'letsencrypt', fingerprint: le.fingerprint });
    } else summary.letsEncryptError = le.reason;
  }
  json(summary);
}

const install = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} install`,
      summary: "make sure a certificate exists, render, write, nginx -t, reload; then Let's Encrypt when asked",
      usage:
        `${TOOL} install [--context-file context.sh] [--root DIR] [--ip IP]... [--http-port 80]\n` +
        '         [--generate-key] [--no-reload] [--nginx BIN] [--nginx-conf FILE] [--reload-command CMD]',
      options: {
        ...contextOptions,
        ...ipOption,
        'http-port': { type: 'string' },
        'generate-key': { type: 'boolean', default: false },
        'no-reload': { type: 'boolean', default: false },
        nginx: { type: 'string' },
        'nginx-conf': { type: 'string' },
        'reload-command': { type: 'string' },
      },
      details:
        'A configuration that fails nginx -t is never left in place: the previous files are restored and keep\n' +
        'serving (exit 3). TLS mode letsencrypt: once nginx serves port 80, certbot asks the ACME directory; on\n' +
        'failure the self-signed certificate stays and the reason is printed (exit 0). A valid certificate\n' +
        `(> ${RENEW_BEFORE_DAYS} days left) is not re-requested.\n\n` +
        examples(
          'install --generate-key --reload-command "systemctl reload-or-restart nginx"   # the appliance',
          'install --root /tmp/appliance --ip 192.0.2.7 --generate-key --no-reload        # a test root',
        ),
    },
    {
      ...contextHelp,
      ip: "an address for the self-signed certificate (repeatable; default: the host's addresses)",
      'http-port': 'plain-HTTP port (default 80)',
      'generate-key': 'generate and keep an API key when ONEAPP_COPILOT_PASSWORD is empty and none is stored',
      'no-reload': 'write and test only (nginx not running yet)',
      nginx: 'nginx binary (default nginx)',
      'nginx-conf':
        "main nginx.conf to test and reload (default: nginx's own; with --root, <root>/etc/nginx/nginx.conf " +
        'if present)',
      'reload-command': 'shell command that reloads nginx (default "<nginx> -s reload"); also certbot\'s deploy hook',
    },
    argv,
    ({ values, log }) => runInstall(values, log),
  );

function ensureSummary(plan: TlsPlan, paths: AppliancePaths): Record<string, unknown> {
  return {
    served: plan.kind,
    certificate: plan.served.certificate,
    fingerprint: plan.fingerprint,
    ...(plan.selfSigned
      ? {
          caCertificate: paths.tls.caCert,
          caFingerprint: plan.selfSigned.caFingerprint,
          names: plan.selfSigned.sans,
          leaf: plan.selfSigned.reason,
        }
      : {}),
    ...(plan.letsEncryptPending ? { letsEncrypt: `pending: ${plan.letsEncryptReason}` } : {}),
  };
}

const tlsEnsure = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} tls ensure`,
      summary:
        'make sure the certificate of the configured TLS mode exists (CA kept, leaf re-issued when names change)',
      usage: `${TOOL} tls ensure [--context-file context.sh] [--root DIR] [--ip IP]...`,
      options: { ...contextOptions, ...ipOption },
      details: examples(`tls ensure --context-file ${CONTEXT}`, 'tls ensure --root /tmp/appliance --ip 192.0.2.7'),
    },
    { ...contextHelp, ip: "an address for the certificate (repeatable; default: the host's addresses)" },
    argv,
    async ({ values, log }) => {
      const given = ips(values);
      const { config, paths } = await context(values, log);
      const plan = await prepareTls(config, { paths, ipAddresses: await ipAddresses(given), log });
      json(ensureSummary(plan, paths));
    },
  );

const tlsFingerprint = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} tls fingerprint`,
      summary: 'print the SHA-256 fingerprints of the served certificate and the appliance CA',
      usage: `${TOOL} tls fingerprint [--root DIR]`,
      options: { root: contextOptions.root },
      details: examples('tls fingerprint', 'tls fingerprint --root /tmp/appliance'),
    },
    { root: contextHelp.root },
    argv,
    async ({ values }) => {
      const { paths } = rootPaths(values);
      process.stdout.write(`server ${await fingerprintOf(paths.tls.cert)}\n`);
      const ca = await fingerprintOf(paths.tls.caCert).catch(() => undefined);
      if (ca) process.stdout.write(`ca     ${ca}  (${paths.tls.caCert})\n`);
    },
  );

const tlsLetsEncrypt = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} tls letsencrypt`,
      summary: 'request (or keep) the ACME certificate for ONEAPP_COPILOT_HOSTNAME; nginx must serve port 80',
      usage: `${TOOL} tls letsencrypt [--context-file context.sh] [--root DIR] [--reload-command CMD]`,
      options: { ...contextOptions, 'reload-command': { type: 'string' } },
      details:
        'Exit 0 with the certificate paths, or exit 5 with the reason (the self-signed certificate keeps\n' +
        'serving).\n\n' +
        examples(`tls letsencrypt --context-file ${CONTEXT} --reload-command "systemctl reload nginx"`),
    },
    { ...contextHelp, 'reload-command': 'certbot deploy hook (default "nginx -s reload")' },
    argv,
    async ({ values, log }) => {
      const { config, paths } = await context(values, log);
      const deployHook = text(values, 'reload-command') ?? 'nginx -s reload';
      const le = await obtainLetsEncrypt(letsEncryptRequest(config, paths, { deployHook, log }));
      json(le);
      return le.ok ? ExitCode.ok : ExitCode.network;
    },
  );

const tls = (argv: string[]) =>
  runSubcommands(
    `${TOOL} tls`,
    "certificates: the per-VM CA and leaf, the operator's certificate, Let's Encrypt",
    {
      ensure: { summary: 'create/keep the certificate of the configured mode', run: tlsEnsure },
      fingerprint: { summary: 'print SHA-256 fingerprints', run: tlsFingerprint },
      letsencrypt: { summary: 'request or keep the ACME certificate', run: tlsLetsEncrypt },
    },
    argv,
  );

/** Every command path, for the tests (help and usage errors of each). */
export const COMMANDS = [['render'], ['install'], ['tls', 'ensure'], ['tls', 'fingerprint'], ['tls', 'letsencrypt']];

export function main(argv: string[]): Promise<number> {
  return runSubcommands(
    TOOL,
    'the SLM-Copilot gateway: nginx site, API keys, certificates',
    {
      render: { summary: 'print the rendered gateway (dry run)', run: render },
      install: { summary: "certificate + render + nginx -t + reload (+ Let's Encrypt)", run: install },
      tls: { summary: 'certificate commands (ensure, fingerprint, letsencrypt)', run: tls },
    },
    argv,
  );
}
