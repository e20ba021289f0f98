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

/** The one-apps report (`/etc/one-appliance/config`, 0600) plus the client snippet files. Pure. */
export function renderReport(inputs: ReportInputs): FileSpec[] {
  const { config, paths, tls } = inputs;
  const endpoint = endpointOf(inputs);
  const selfSigned = tls.mode === 'self-signed';
  const caOnClient = '~/slm-copilot-ca.crt';
  const files = clientFiles(paths);
  const curlCa = selfSigned ? `--cacert ${caOnClient} ` : '';

  const sections: IniSections = [
    [
      'Status',
      [
        ['state', reportState(inputs)],
        ['generated_at', inputs.generatedAt],
        ...(inputs.failure?.what ?? []).map((e, i): [string, string] => [`failure_${i + 1}`, e]),
        ...(inputs.failure ? ([['fix', inputs.failure.fix]] as Array<[string, string]>) : []),
        ...inputs.errors.map((e, i): [string, string] => [`error_${i + 1}`, e]),
        ...inputs.warnings.map((w, i): [string, string] => [`warning_${i + 1}`, w]),
      ],
    ],
    [
      'Connection',
      [
        ['endpoint', `${endpoint}/v1`],
        ['api_key', inputs.apiKey],
        [
          'api_key_source',
          inputs.generatedKeyFile
            ? `generated on first boot, kept in ${inputs.generatedKeyFile}`
            : 'ONEAPP_COPILOT_PASSWORD',
        ],
        ['extra_api_keys', config.extraApiKeys.length],
        ['model_id', config.modelId],
        ['context_window', inputs.engine.contextPerSlot],
        ['health_url', `${endpoint}/readyz`],
      ],
    ],
    [
      'Engine',
      [
        ['engine', inputs.engine.name],
        ...engineChoice(inputs),
        ['version', inputs.engine.version],
        ['threads', inputs.engine.threads],
        ...(inputs.engine.cpuVariant ? ([['cpu_variant', inputs.engine.cpuVariant]] as Array<[string, string]>) : []),
        ['parallel_slots', inputs.engine.parallelSlots],
        ['context_per_request', inputs.engine.contextPerSlot],
      ],
    ],
    [
      'TLS',
      [
        ['mode', tls.mode],
        ['certificate_sha256', tls.certFingerprintSha256],
        ['certificate_not_after', tls.notAfter],
        ...(selfSigned && tls.caCertPath
          ? ([
              ['ca_certificate', tls.caCertPath],
              ['ca_sha256', tls.caFingerprintSha256 ?? ''],
              ['ca_download', `scp root@${inputs.host}:${tls.caCertPath} ${caOnClient}`],
              ['ca_check', `openssl x509 -noout -fingerprint -sha256 -in ${caOnClient}   # must print ca_sha256`],
            ] as Array<[string, string]>)
          : []),
      ],
    ],
    [
      'Cline',
      [
        ['api_provider', 'OpenAI Compatible'],
        ['base_url', `${endpoint}/v1`],
        ['api_key', inputs.apiKey],
        ['model_id', config.modelId],
        ['context_window_size', inputs.engine.contextPerSlot],
        ['settings_json', JSON.stringify(clineSettings(inputs))],
        ['settings_file', files.clineJson],
      ],
    ],
    [
      'Continue',
      [
        [
          'config_yaml',
          stringify(continueConfig(inputs, CA_ON_CLIENT_YAML), { collectionStyle: 'flow', lineWidth: 0 }).trim(),
        ],
        ['config_file', files.continueYaml],
      ],
    ],
    [
      'Trust',
      selfSigned
        ? [
            [
              'vscode',
              `start VS Code from an environment with NODE_EXTRA_CA_CERTS=${caOnClient} (e.g. NODE_EXTRA_CA_CERTS=${caOnClient} code .); Cline and Continue then trust the appliance`,
            ],
            [
              'continue',
              `set requestOptions.caBundlePath in config_yaml to the absolute path of the downloaded CA file`,
            ],
            ['python', `SSL_CERT_FILE=${caOnClient} (httpx/openai) or REQUESTS_CA_BUNDLE=${caOnClient} (requests)`],
          ]
        : [['note', 'the certificate is publicly trusted: no CA file is needed']],
    ],
    [
      'Examples',
      [
        ['curl_models', `curl ${curlCa}-H 'Authorization: Bearer ${inputs.apiKey}' ${endpoint}/v1/models`],
        [
          'curl_chat',
          `curl ${curlCa}-N -H 'Authorization: Bearer ${inputs.apiKey}' -H 'Content-Type: application/json' ${endpoint}/v1/chat/completions -d '{"model":"${config.modelId}","stream":true,"messages":[{"role":"user","content":"Write hello world in Go"}]}'`,
        ],
      ],
    ],
  ];

  return [
    { path: paths.reportFile, text: renderIni(sections, REPORT_HEADER), mode: 0o600 },
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
