import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  appliancePaths,
  parseContext,
  parseContextFile,
  type AppliancePaths,
  type Config,
} from '@slm-copilot/context-schema';
import { ExitCode, gatherHostFacts, runCommand, runSubcommands, TaskError, type Logger } from '@slm-copilot/task-kit';
import { resolveApiKeys } from './api-key.js';
import { exists, installGateway } from './install.js';
import { gatewayFiles, renderGateway, type ServedCertificate } from './render.js';
import { certbotDirs, currentLetsEncrypt, fingerprintOf, obtainLetsEncrypt, prepareTls } from './tls.js';

const TOOL = 'nginx-config';

const contextOptions = {
  file: { type: 'string', short: 'f' },
  root: { type: 'string' },
} as const;
const contextHelp = {
  file: 'an OpenNebula context.sh to read (never executed) instead of the ONEAPP_* environment',
  root: 'root prefix of the appliance layout (default: SLM_COPILOT_ROOT or /)',
};

async function loadContext(
  values: Record<string, unknown>,
  log: Logger,
): Promise<{ config: Config; paths: AppliancePaths; root: string }> {
  let env: Record<string, string | undefined> = process.env;
  if (typeof values.file === 'string') {
    const text = await readFile(values.file, 'utf8').catch((e: Error) => {
      throw new TaskError(`cannot read context file ${values.file}: ${e.message}`, { exitCode: ExitCode.environment });
    });
    const parsed = parseContextFile(text);
    for (const w of parsed.warnings) log.warn(`${values.file}: ${w}`);
    env = parsed.values;
  }
  const config = parseContext(env);
  if (config.apiKey) log.addSecret(config.apiKey);
  for (const k of config.extraApiKeys) log.addSecret(k);
  const root = path.resolve(typeof values.root === 'string' ? values.root : (process.env.SLM_COPILOT_ROOT ?? '/'));
  return { config, paths: appliancePaths(root === '/' ? '' : root), root };
}

function port(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new TaskError(`--${name} must be a port number, got ${String(value)}`, { exitCode: ExitCode.usage });
  return n;
}

async function ipAddresses(values: Record<string, unknown>): Promise<string[]> {
  const given = values.ip as string[] | undefined;
  return given && given.length ? given : (await gatherHostFacts()).ipAddresses;
}

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
      usage: `${TOOL} render [--file context.sh] [--root DIR] [--http-port 80]`,
      options: { ...contextOptions, 'http-port': { type: 'string' } },
      details: `Example: ${TOOL} render --file /var/run/one-context/context.sh`,
    },
    { ...contextHelp, 'http-port': 'plain-HTTP port for the redirect and ACME challenges (default 80)' },
    argv,
    async ({ values, log }) => {
      const { config, paths } = await loadContext(values, log);
      const keys = await resolveApiKeys(config, paths).catch(() => ({
        main: 'sk-placeholder-key-not-resolved',
        extra: config.extraApiKeys,
      }));
      log.addSecret(keys.main);
      const files = renderGateway(config, {
        paths,
        keys,
        tls: await servedNow(config, paths),
        httpPort: port(values['http-port'], 'http-port', 80),
      });
      const keyFile = gatewayFiles(paths).keys;
      for (const f of files) {
        process.stdout.write(
          `# ==> ${f.path} (mode ${(f.mode ?? 0o644).toString(8)}${f.owner ? `, ${f.owner}` : ''})\n`,
        );
        process.stdout.write(
          f.path === keyFile ? `# secret: ${keys.extra.length + 1} API key(s), not printed\n\n` : `${f.text}\n`,
        );
      }
    },
  );

const install = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} install`,
      summary: "make sure a certificate exists, render, write, nginx -t, reload; then Let's Encrypt when asked",
      usage: `${TOOL} install [--file context.sh] [--root DIR] [--ip IP]... [--generate-key] [--no-reload] [--nginx BIN]`,
      options: {
        ...contextOptions,
        ip: { type: 'string', multiple: true },
        'http-port': { type: 'string' },
        'generate-key': { type: 'boolean', default: false },
        'no-reload': { type: 'boolean', default: false },
        nginx: { type: 'string' },
        'nginx-conf': { type: 'string' },
        'reload-command': { type: 'string' },
      },
      details:
        'A configuration that fails nginx -t is never left in place: the previous files are restored and keep serving (exit 3).\n' +
        'TLS mode letsencrypt: once nginx serves port 80, certbot asks the ACME directory; on failure the self-signed\n' +
        'certificate stays and the reason is printed (exit 0). A valid certificate (> 30 days left) is not re-requested.\n' +
        `Example (appliance): ${TOOL} install --generate-key --reload-command "systemctl reload-or-restart nginx"`,
    },
    {
      ...contextHelp,
      ip: "an address for the self-signed certificate (repeatable; default: the host's addresses)",
      'http-port': 'plain-HTTP port (default 80)',
      'generate-key': 'generate and keep an API key when ONEAPP_COPILOT_PASSWORD is empty and none is stored',
      'no-reload': 'write and test only (nginx not running yet)',
      nginx: 'nginx binary (default nginx)',
      'nginx-conf':
        "main nginx.conf to test and reload (default: nginx's own; with --root, <root>/etc/nginx/nginx.conf if present)",
      'reload-command': 'shell command that reloads nginx (default "<nginx> -s reload"); also certbot\'s deploy hook',
    },
    argv,
    async ({ values, log }) => {
      const { config, paths, root } = await loadContext(values, log);
      const nginx = typeof values.nginx === 'string' ? values.nginx : 'nginx';
      const rootConf = path.join(paths.nginx.confDir, 'nginx.conf');
      const conf =
        typeof values['nginx-conf'] === 'string'
          ? values['nginx-conf']
          : root !== '/' && (await exists(rootConf))
            ? rootConf
            : undefined;
      const confArgs = conf ? ['-c', conf] : [];
      const reloadCommand =
        typeof values['reload-command'] === 'string'
          ? values['reload-command']
          : [nginx, ...confArgs, '-s', 'reload'].join(' ');
      const keys = await resolveApiKeys(config, paths, { generate: Boolean(values['generate-key']) });
      log.addSecret(keys.main);
      if (keys.generated) log.info(`generated an API key and kept it in ${paths.apiKeyFile} (0600)`);
      const plan = await prepareTls(config, { paths, ipAddresses: await ipAddresses(values) });
      const httpPort = port(values['http-port'], 'http-port', 80);
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
        const le = await obtainLetsEncrypt({
          hostname: config.hostname,
          email: config.tls.letsEncryptEmail,
          acmeDirectory: config.tls.acmeDirectory,
          webroot: paths.nginx.acmeWebroot,
          dirs: certbotDirs(paths),
          deployHook: reloadCommand,
          log,
        });
        if (le.ok) {
          await apply(le.served);
          Object.assign(summary, { tls: 'letsencrypt', fingerprint: le.fingerprint });
        } else summary.letsEncryptError = le.reason;
      }
      process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    },
  );

const tlsEnsure = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} tls ensure`,
      summary:
        'make sure the certificate of the configured TLS mode exists (CA kept, leaf re-issued when names change)',
      usage: `${TOOL} tls ensure [--file context.sh] [--root DIR] [--ip IP]...`,
      options: { ...contextOptions, ip: { type: 'string', multiple: true } },
    },
    { ...contextHelp, ip: "an address for the certificate (repeatable; default: the host's addresses)" },
    argv,
    async ({ values, log }) => {
      const { config, paths } = await loadContext(values, log);
      const plan = await prepareTls(config, { paths, ipAddresses: await ipAddresses(values), log });
      process.stdout.write(
        `${JSON.stringify(
          {
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
          },
          null,
          2,
        )}\n`,
      );
    },
  );

const tlsFingerprint = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} tls fingerprint`,
      summary: 'print the SHA-256 fingerprints of the served certificate and the appliance CA',
      usage: `${TOOL} tls fingerprint [--root DIR]`,
      options: { root: contextOptions.root },
    },
    { root: contextHelp.root },
    argv,
    async ({ values }) => {
      const root = path.resolve(typeof values.root === 'string' ? values.root : (process.env.SLM_COPILOT_ROOT ?? '/'));
      const paths = appliancePaths(root === '/' ? '' : root);
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
      usage: `${TOOL} tls letsencrypt [--file context.sh] [--root DIR] [--reload-command CMD]`,
      options: { ...contextOptions, 'reload-command': { type: 'string' } },
      details:
        'Exit 0 with the certificate paths, or exit 5 with the reason (the self-signed certificate keeps serving).',
    },
    { ...contextHelp, 'reload-command': 'certbot deploy hook (default "nginx -s reload")' },
    argv,
    async ({ values, log }) => {
      const { config, paths } = await loadContext(values, log);
      if (!config.hostname)
        throw new TaskError("ONEAPP_COPILOT_HOSTNAME is empty: Let's Encrypt needs a DNS name", {
          exitCode: ExitCode.invalidConfig,
        });
      const le = await obtainLetsEncrypt({
        hostname: config.hostname,
        email: config.tls.letsEncryptEmail,
        acmeDirectory: config.tls.acmeDirectory,
        webroot: paths.nginx.acmeWebroot,
        dirs: certbotDirs(paths),
        deployHook: typeof values['reload-command'] === 'string' ? values['reload-command'] : 'nginx -s reload',
        log,
      });
      process.stdout.write(`${JSON.stringify(le, null, 2)}\n`);
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

process.exitCode = await main(process.argv.slice(2));
