import { Ajv, type ErrorObject } from 'ajv';
import { TaskError, ExitCode, maskSecret } from '@slm-copilot/task-kit';
import type { Config } from './config.js';
import type { ContextValues } from './context-values.generated.js';
import { contextSchema, VARIABLE_PREFIX, variableByName, variables, type VariableSpec } from './schema.js';

export interface ContextProblem {
  variable: string;
  /** The value as given, masked when the variable is a secret. */
  shown: string;
  expected: string;
}

/** Every bad variable at once, so an operator fixes the template in one round. */
export class ContextError extends TaskError {
  readonly problems: readonly ContextProblem[];
  constructor(problems: ContextProblem[]) {
    const lines = problems.map((p) => `  ${p.variable} = ${p.shown}: expected ${p.expected}`);
    super(
      `invalid context: ${problems.length} variable${problems.length === 1 ? '' : 's'} refused\n${lines.join('\n')}`,
      {
        exitCode: ExitCode.invalidConfig,
        hint: 'fix the VM context with Update Configuration (applied without a reboot), or run configure again',
      },
    );
    this.name = 'ContextError';
    this.problems = problems;
  }
}

const ajv = new Ajv({ allErrors: true, strict: true, verbose: true, useDefaults: false });
for (const keyword of ['x-kind', 'x-secret', 'x-stage', 'x-hint', 'x-expect']) ajv.addKeyword({ keyword });
const validate = ajv.compile(contextSchema);

/**
 * Shows a value the way an operator can recognise it: quoted, escapes visible, long values cut. A
 * secret — or the value of an unknown name, which may be a misspelled secret — shows only whether it
 * was set (task-kit's maskSecret: neither length nor characters).
 */
export function showValue(spec: VariableSpec | undefined, raw: string): string {
  if (!spec || spec.secret) return maskSecret(raw);
  const cut = raw.length > 80 ? `${raw.slice(0, 77)}...` : raw;
  return JSON.stringify(cut);
}

function coerce(spec: VariableSpec, raw: string): unknown {
  const text = spec.kind === 'list' ? raw : raw.trim();
  switch (spec.kind) {
    case 'integer':
      return /^[+-]?\d{1,15}$/.test(text) ? Number(text) : text;
    case 'boolean': {
      const t = text.toLowerCase();
      if (['yes', 'true', '1', 'on'].includes(t)) return true;
      if (['no', 'false', '0', 'off'].includes(t)) return false;
      return text;
    }
    case 'list':
      return raw
        .split(/[,\s]+/)
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    case 'string':
      return text;
  }
}

function variableOf(error: ErrorObject): string | undefined {
  const m = /^\/(ONEAPP_[A-Z0-9_]+)/.exec(error.instancePath);
  if (m) return m[1];
  if (error.keyword === 'additionalProperties')
    return (error.params as { additionalProperty: string }).additionalProperty;
  return undefined;
}

/**
 * The ONEAPP_* context → the typed Config. Pure: reads only `env`, generates nothing.
 * Unset or empty variables take their defaults (OpenNebula passes empty strings for
 * unanswered user inputs). Throws one ContextError naming every bad variable.
 */
export function parseContext(env: Readonly<Record<string, string | undefined>>): Config {
  const input: Record<string, unknown> = {};
  const raw: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(VARIABLE_PREFIX) || value === undefined) continue;
    raw[name] = value;
    const spec = variableByName.get(name);
    if (!spec) {
      input[name] = value; // reported as unknown by the schema (additionalProperties: false)
      continue;
    }
    if (value.trim() === '') continue; // unanswered user input: the default applies
    input[name] = coerce(spec, value);
  }
  for (const spec of variables) if (!(spec.name in input)) input[spec.name] = spec.default;

  const problems = new Map<string, ContextProblem>();
  const report = (variable: string, expected: string) => {
    if (problems.has(variable)) return;
    const spec = variableByName.get(variable);
    problems.set(variable, { variable, shown: showValue(spec, raw[variable] ?? ''), expected });
  };

  if (!validate(input)) {
    for (const error of validate.errors ?? []) {
      const variable = variableOf(error);
      if (!variable) continue; // if/then wrappers; their inner errors carry the path
      const spec = variableByName.get(variable);
      if (!spec) {
        report(variable, `a known variable (no ${variable} exists; is it misspelled?)`);
        continue;
      }
      const specific = (error.parentSchema as { 'x-expect'?: string } | undefined)?.['x-expect'];
      report(variable, specific ?? spec.expect);
    }
  }

  // Shape guaranteed by the schema once validation passed (and only read after that below).
  const v = input as unknown as ContextValues;
  const tlsRequested = v.ONEAPP_COPILOT_TLS_MODE;
  const hostname = v.ONEAPP_COPILOT_HOSTNAME || null;
  const certificatePem = decodePem(v.ONEAPP_COPILOT_TLS_CERT, 'CERTIFICATE', 'ONEAPP_COPILOT_TLS_CERT', report);
  const privateKeyPem = decodePem(v.ONEAPP_COPILOT_TLS_KEY, 'PRIVATE KEY', 'ONEAPP_COPILOT_TLS_KEY', report);

  if (problems.size > 0) throw new ContextError([...problems.values()]);

  return {
    apiKey: v.ONEAPP_COPILOT_PASSWORD || null,
    extraApiKeys: v.ONEAPP_COPILOT_EXTRA_API_KEYS,
    engine: v.ONEAPP_COPILOT_ENGINE,
    role: v.ONEAPP_COPILOT_ROLE,
    modelId: v.ONEAPP_COPILOT_MODEL_ID,
    contextSize: v.ONEAPP_COPILOT_CONTEXT_SIZE,
    kvCacheType: v.ONEAPP_COPILOT_KV_CACHE_TYPE,
    threads: v.ONEAPP_COPILOT_THREADS,
    parallelSlots: v.ONEAPP_COPILOT_PARALLEL,
    maxTokens: v.ONEAPP_COPILOT_MAX_TOKENS,
    promptCachePersist: v.ONEAPP_COPILOT_PROMPT_CACHE_PERSIST,
    hostname: hostname?.toLowerCase() ?? null,
    httpsPort: v.ONEAPP_COPILOT_HTTPS_PORT,
    corsOrigins: v.ONEAPP_COPILOT_CORS_ORIGINS,
    rateLimitPerMinute: v.ONEAPP_COPILOT_RATE_LIMIT,
    connectionLimit: v.ONEAPP_COPILOT_CONNECTION_LIMIT,
    requestTimeoutSeconds: v.ONEAPP_COPILOT_REQUEST_TIMEOUT,
    maxBodyMegabytes: v.ONEAPP_COPILOT_MAX_BODY_SIZE,
    metrics: v.ONEAPP_COPILOT_METRICS,
    basicAuth: v.ONEAPP_COPILOT_BASIC_AUTH,
    tls: {
      requestedMode: tlsRequested,
      mode: tlsRequested === 'auto' ? (hostname ? 'letsencrypt' : 'self-signed') : tlsRequested,
      certificatePem,
      privateKeyPem,
      letsEncryptEmail: v.ONEAPP_COPILOT_LETSENCRYPT_EMAIL || null,
      acmeDirectory: v.ONEAPP_COPILOT_ACME_DIRECTORY,
    },
  };
}

/** Base64 → PEM text, checking it really holds a PEM block of the wanted kind. */
function decodePem(
  value: unknown,
  label: 'CERTIFICATE' | 'PRIVATE KEY',
  variable: string,
  report: (variable: string, expected: string) => void,
): string | null {
  if (typeof value !== 'string' || value.trim() === '') return null;
  const text = Buffer.from(value.replace(/\s+/g, ''), 'base64').toString('utf8');
  const block =
    label === 'CERTIFICATE'
      ? /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/
      : /-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;
  if (!block.test(text)) {
    report(
      variable,
      `base64 of a PEM ${label.toLowerCase()} (the decoded text has no "-----BEGIN ${label}-----" block)`,
    );
    return null;
  }
  if (text.includes('ENCRYPTED PRIVATE KEY')) {
    report(variable, 'an unencrypted private key (nginx cannot ask for a passphrase at boot)');
    return null;
  }
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** The config with every secret masked (task-kit's maskSecret): safe to log or print. */
export function redactConfig(config: Config): Record<string, unknown> {
  const { privateKeyPem } = config.tls;
  return {
    ...config,
    apiKey: config.apiKey === null ? '(generated on first boot)' : maskSecret(config.apiKey),
    extraApiKeys: config.extraApiKeys.map((k) => maskSecret(k)),
    tls: { ...config.tls, privateKeyPem: privateKeyPem === null ? null : maskSecret(privateKeyPem) },
  };
}

/** All secrets in a config, for the logger's mask list. */
export function secretsOf(config: Config): string[] {
  return [config.apiKey, ...config.extraApiKeys, config.tls.privateKeyPem].filter((s): s is string => Boolean(s));
}
