import path from 'node:path';
import { stringify } from 'yaml';
import type { AppliancePaths, Config, TlsMode } from '@slm-copilot/context-schema';
import type { FileSpec } from '@slm-copilot/task-kit';
import { renderIni, type IniSections } from './ini.js';

/** Everything the report says, gathered by the lifecycle after configure/bootstrap. */
export interface ReportInputs {
  config: Config;
  paths: AppliancePaths;
  /** The key clients use (the configured one or the generated one). */
  apiKey: string;
  /** Where the generated key is kept, when it was generated (null when it came from the context). */
  generatedKeyFile: string | null;
  /** DNS name or IP clients connect to. */
  host: string;
  engine: {
    name: string;
    version: string;
    threads: number;
    contextPerSlot: number;
    parallelSlots: number;
    /** The ggml CPU module the serving engine loaded (runtime-dispatching build), when known. */
    cpuVariant?: string | null;
  };
  tls: {
    mode: TlsMode;
    /** The per-VM CA (self-signed mode), null otherwise. */
    caCertPath: string | null;
    caFingerprintSha256: string | null;
    certFingerprintSha256: string;
    notAfter: string;
  };
  /** Plan warnings, Let's Encrypt failure, … — one line each. */
  warnings: string[];
  /** Refused context variables: the appliance keeps serving the last good configuration. */
  errors: string[];
  generatedAt: string;
  /** Which engine serves, written by bootstrap (absent before bootstrap ran). */
  serving?: EngineServing;
  /** Bootstrap could not make an engine ready: what failed, and what the operator can do. */
  failure?: { what: string[]; fix: string } | null;
}

export interface EngineServing {
  /** ONEAPP_COPILOT_ENGINE. */
  requested: string;
  /** The engine /readyz reflects; null when none became ready. */
  serving: string | null;
  /** Why the requested engine does not serve (null: no fallback). */
  fallbackReason: string | null;
}

/** `[Status] state` of the report: one line a person reads first. */
export function reportState(inputs: Pick<ReportInputs, 'errors' | 'serving' | 'failure'>): string {
  if (inputs.failure) return 'failed: no engine became ready; the API answers 503 until one does';
  if (inputs.errors.length > 0) return 'configuration refused: serving the last good configuration';
  const s = inputs.serving;
  if (s?.serving && s.fallbackReason)
    return `ready: serving with the fallback engine ${s.serving} (${s.requested} did not become ready)`;
  return 'ready';
}

/** `[Engine]` lines that say which engine was asked for, which one serves, and why they differ. */
function engineChoice(inputs: ReportInputs): Array<[string, string]> {
  const s = inputs.serving;
  if (!s) return [['requested', inputs.config.engine]];
  return [
    ['requested', s.requested],
    ['serving', s.serving ?? 'none'],
    ['fallback', s.fallbackReason && s.serving ? 'yes' : 'no'],
    ...(s.fallbackReason ? ([['fallback_reason', s.fallbackReason]] as Array<[string, string]>) : []),
  ];
}

/** Continue does not expand `~`: the user replaces this with the absolute path of the downloaded CA. */
const CA_ON_CLIENT_YAML = '/path/to/slm-copilot-ca.crt';

const REPORT_HEADER = '# SLM-Copilot appliance report (regenerated on every boot). Contains the API key: keep it 0600.';

export function endpointOf(inputs: Pick<ReportInputs, 'host' | 'config'>): string {
  const port = inputs.config.httpsPort === 443 ? '' : `:${inputs.config.httpsPort}`;
  const host = inputs.host.includes(':') ? `[${inputs.host}]` : inputs.host;
  return `https://${host}${port}`;
}

/** Cline's "OpenAI Compatible" provider fields, as its settings page names them. */
export function clineSettings(inputs: ReportInputs) {
  return {
    'API Provider': 'OpenAI Compatible',
    'Base URL': `${endpointOf(inputs)}/v1`,
    'API Key': inputs.apiKey,
    'Model ID': inputs.config.modelId,
    'Context Window Size': inputs.engine.contextPerSlot,
    'Supports Images': false,
  };
}

/** A Continue `config.yaml` (schema v1) for this appliance. */
export function continueConfig(inputs: ReportInputs, caBundleOnClient = CA_ON_CLIENT_YAML) {
  return {
    name: 'SLM-Copilot',
    version: '1.0.0',
    schema: 'v1',
    models: [
      {
        name: `${inputs.config.modelId} (SLM-Copilot)`,
        provider: 'openai',
        model: inputs.config.modelId,
        apiBase: `${endpointOf(inputs)}/v1`,
        apiKey: inputs.apiKey,
        roles: ['chat', 'edit', 'apply'],
        capabilities: ['tool_use'],
        defaultCompletionOptions: { contextLength: inputs.engine.contextPerSlot },
        ...(inputs.tls.mode === 'self-signed' ? { requestOptions: { caBundlePath: caBundleOnClient } } : {}),
      },
    ],
  };
}

export const clientFiles = (paths: AppliancePaths) => ({
  continueYaml: path.join(paths.configDir, 'clients/continue-config.yaml'),
  clineJson: path.join(paths.configDir, 'clients/cline-settings.json'),
});

type Lines = Array<[string, string | number]>;

/** Where clients keep the downloaded CA (the report's commands use it). */
const CA_ON_CLIENT = '~/slm-copilot-ca.crt';

function statusSection(inputs: ReportInputs): Lines {
  return [
    ['state', reportState(inputs)],
    ['generated_at', inputs.generatedAt],
    ...(inputs.failure?.what ?? []).map((e, i): [string, string] => [`failure_${i + 1}`, e]),
    ...(inputs.failure ? ([['fix', inputs.failure.fix]] as Lines) : []),
    ...inputs.errors.map((e, i): [string, string] => [`error_${i + 1}`, e]),
    ...inputs.warnings.map((w, i): [string, string] => [`warning_${i + 1}`, w]),
  ];
}

function connectionSection(inputs: ReportInputs): Lines {
  const endpoint = endpointOf(inputs);
  const source = inputs.generatedKeyFile
    ? `generated on first boot, kept in ${inputs.generatedKeyFile}`
    : 'ONEAPP_COPILOT_PASSWORD';
  return [
    ['endpoint', `${endpoint}/v1`],
    ['api_key', inputs.apiKey],
    ['api_key_source', source],
    ['extra_api_keys', inputs.config.extraApiKeys.length],
    ['model_id', inputs.config.modelId],
    ['context_window', inputs.engine.contextPerSlot],
    ['health_url', `${endpoint}/readyz`],
  ];
}

function engineSection(inputs: ReportInputs): Lines {
  const { engine } = inputs;
  return [
    ['engine', engine.name],
    ...engineChoice(inputs),
    ['version', engine.version],
    ['threads', engine.threads],
    ...(engine.cpuVariant ? ([['cpu_variant', engine.cpuVariant]] as Lines) : []),
    ['parallel_slots', engine.parallelSlots],
    ['context_per_request', engine.contextPerSlot],
  ];
}

function tlsSection(inputs: ReportInputs): Lines {
  const { tls } = inputs;
  const ca: Lines =
    tls.mode === 'self-signed' && tls.caCertPath
      ? [
          ['ca_certificate', tls.caCertPath],
          ['ca_sha256', tls.caFingerprintSha256 ?? ''],
          ['ca_download', `scp root@${inputs.host}:${tls.caCertPath} ${CA_ON_CLIENT}`],
          ['ca_check', `openssl x509 -noout -fingerprint -sha256 -in ${CA_ON_CLIENT}   # must print ca_sha256`],
        ]
      : [];
  return [
    ['mode', tls.mode],
    ['certificate_sha256', tls.certFingerprintSha256],
    ['certificate_not_after', tls.notAfter],
    ...ca,
  ];
}

function clineSection(inputs: ReportInputs): Lines {
  return [
    ['api_provider', 'OpenAI Compatible'],
    ['base_url', `${endpointOf(inputs)}/v1`],
    ['api_key', inputs.apiKey],
    ['model_id', inputs.config.modelId],
    ['context_window_size', inputs.engine.contextPerSlot],
    ['settings_json', JSON.stringify(clineSettings(inputs))],
    ['settings_file', clientFiles(inputs.paths).clineJson],
  ];
}

function continueSection(inputs: ReportInputs): Lines {
  const yaml = stringify(continueConfig(inputs, CA_ON_CLIENT_YAML), { collectionStyle: 'flow', lineWidth: 0 });
  return [
    ['config_yaml', yaml.trim()],
    ['config_file', clientFiles(inputs.paths).continueYaml],
  ];
}

function trustSection(inputs: ReportInputs): Lines {
  if (inputs.tls.mode !== 'self-signed') return [['note', 'the certificate is publicly trusted: no CA file is needed']];
  const vscode =
    `start VS Code from an environment with NODE_EXTRA_CA_CERTS=${CA_ON_CLIENT} ` +
    `(e.g. NODE_EXTRA_CA_CERTS=${CA_ON_CLIENT} code .); Cline and Continue then trust the appliance`;
  return [
    ['vscode', vscode],
    ['continue', 'set requestOptions.caBundlePath in config_yaml to the absolute path of the downloaded CA file'],
    ['python', `SSL_CERT_FILE=${CA_ON_CLIENT} (httpx/openai) or REQUESTS_CA_BUNDLE=${CA_ON_CLIENT} (requests)`],
  ];
}

function examplesSection(inputs: ReportInputs): Lines {
  const endpoint = endpointOf(inputs);
  const curl = `curl ${inputs.tls.mode === 'self-signed' ? `--cacert ${CA_ON_CLIENT} ` : ''}`;
  const auth = `-H 'Authorization: Bearer ${inputs.apiKey}'`;
  const body = JSON.stringify({
    model: inputs.config.modelId,
    stream: true,
    messages: [{ role: 'user', content: 'Write hello world in Go' }],
  });
  return [
    ['curl_models', `${curl}${auth} ${endpoint}/v1/models`],
    ['curl_chat', `${curl}-N ${auth} -H 'Content-Type: application/json' ${endpoint}/v1/chat/completions -d '${body}'`],
  ];
}

/** The one-apps report (`/etc/one-appliance/config`, 0600) plus the client snippet files. Pure. */
export function renderReport(inputs: ReportInputs): FileSpec[] {
  const sections: IniSections = [
    ['Status', statusSection(inputs)],
    ['Connection', connectionSection(inputs)],
    ['Engine', engineSection(inputs)],
    ['TLS', tlsSection(inputs)],
    ['Cline', clineSection(inputs)],
    ['Continue', continueSection(inputs)],
    ['Trust', trustSection(inputs)],
    ['Examples', examplesSection(inputs)],
  ];
  const files = clientFiles(inputs.paths);
  return [
    { path: inputs.paths.reportFile, text: renderIni(sections, REPORT_HEADER), mode: 0o600 },
    { path: files.continueYaml, text: stringify(continueConfig(inputs, CA_ON_CLIENT_YAML)), mode: 0o600 },
    { path: files.clineJson, text: `${JSON.stringify(clineSettings(inputs), null, 2)}\n`, mode: 0o600 },
  ];
}

/** The report on a first boot whose context was refused: nothing is served yet, and it says why. */
export function renderRefusedReport(paths: AppliancePaths, errors: string[], generatedAt: string): FileSpec {
  const sections: IniSections = [
    [
      'Status',
      [
        ['state', 'configuration refused: the API answers 503 until the context is fixed'],
        ['generated_at', generatedAt],
        ...errors.map((e, i): [string, string] => [`error_${i + 1}`, e]),
        ['fix', 'correct the variables in the VM template context (Update Configuration), then reboot the VM'],
      ],
    ],
  ];
  return { path: paths.reportFile, text: renderIni(sections, REPORT_HEADER), mode: 0o600 };
}
