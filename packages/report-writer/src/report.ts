import type { AppliancePaths, Config, TlsMode } from '@slm-copilot/context-schema';
import type { FileSpec } from '@slm-copilot/task-kit';
import {
  agentSnippets,
  caFetchSnippet,
  CLIENT_CA_FILE,
  KEY_VARIABLE,
  runLine,
  type AgentSnippet,
  type ClientTarget,
} from './client-snippets.js';
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

const REPORT_HEADER = '# SLM-Copilot appliance report (regenerated on every boot). Contains the API key: keep it 0600.';

export function endpointOf(inputs: Pick<ReportInputs, 'host' | 'config'>): string {
  const port = inputs.config.httpsPort === 443 ? '' : `:${inputs.config.httpsPort}`;
  const host = inputs.host.includes(':') ? `[${inputs.host}]` : inputs.host;
  return `https://${host}${port}`;
}

/** The SSH login user the CA download names: Ubuntu cloud images refuse root logins. */
const SSH_USER = 'ubuntu';
/** The prompt of each agent's `try` line. */
const TRY_PROMPT = 'Say hello.';

type Lines = Array<[string, string | number]>;

/** The per-VM CA clients must trust and fetch (self-signed mode), or null. */
function perVmCa(inputs: ReportInputs): { path: string; sha256: string } | null {
  const { tls } = inputs;
  if (tls.mode !== 'self-signed' || !tls.caCertPath || !tls.caFingerprintSha256) return null;
  return { path: tls.caCertPath, sha256: tls.caFingerprintSha256 };
}

/** What the agent snippets are rendered for: this VM's endpoint, model, key, context and CA. */
export function clientTarget(inputs: ReportInputs): ClientTarget {
  return {
    origin: endpointOf(inputs),
    model: inputs.config.modelId,
    key: inputs.apiKey,
    contextLength: inputs.engine.contextPerSlot,
    perVmCa: perVmCa(inputs) !== null,
  };
}

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

/** The CA lines: the per-VM CA's download (HTTPS or SSH) and check, or what applies in the other modes. */
function caLines(inputs: ReportInputs): Lines {
  const ca = perVmCa(inputs);
  if (ca) {
    const fetch = caFetchSnippet({
      origin: endpointOf(inputs),
      host: inputs.host,
      caPathOnVm: ca.path,
      sha256: ca.sha256,
      sshUser: SSH_USER,
    });
    return [
      ['ca_certificate', ca.path],
      ['ca_sha256', ca.sha256],
      ['ca_download', fetch.download],
      [
        'ca_download_ssh',
        `${fetch.downloadSsh}   # ${SSH_USER}: the login user of Ubuntu cloud images (they refuse root); ` +
          'the file is world-readable',
      ],
      ['ca_check', `${fetch.check}   # must end with Fingerprint=${fetch.expected}`],
      ['ca_download_note', fetch.why],
    ];
  }
  if (inputs.tls.mode === 'custom') {
    return [
      [
        'ca_note',
        "the operator's certificate: if a private CA signed it, get that CA and its fingerprint from the operator, " +
          `save it as ${CLIENT_CA_FILE} and add the CA lines of [Trust]`,
      ],
    ];
  }
  if (inputs.tls.mode === 'letsencrypt') return [['ca_note', "publicly trusted (Let's Encrypt): no CA file to fetch"]];
  return [];
}

function tlsSection(inputs: ReportInputs): Lines {
  const { tls } = inputs;
  return [
    ['mode', tls.mode],
    ['certificate_sha256', tls.certFingerprintSha256],
    ['certificate_not_after', tls.notAfter],
    ...caLines(inputs),
  ];
}

/** One agent's lines: env_N, setup_N, try, the IDE fields, note_N. */
function agentSection(snippet: AgentSnippet, fieldPrefix = ''): Lines {
  const slug = (field: string) => field.toLowerCase().replace(/[^a-z0-9]+/g, '_');
  return [
    ...snippet.env.map((l, i): [string, string] => [`env_${i + 1}`, l]),
    ...snippet.setup.map((l, i): [string, string] => [`setup_${i + 1}`, l]),
    ['try', runLine(snippet, TRY_PROMPT)],
    ...snippet.fields.map(([f, v]): [string, string] => [`${fieldPrefix}${slug(f)}`, v]),
    ...snippet.notes.map((n, i): [string, string] => [`note_${i + 1}`, n]),
  ];
}

function clientsSection(inputs: ReportInputs): Lines {
  return [
    [
      'how',
      "on your workstation, in a POSIX shell: an agent's env_N lines (in every shell that runs it), " +
        'its setup_N lines once, then try' +
        (perVmCa(inputs) ? `; first fetch and check ${CLIENT_CA_FILE} ([TLS] ca_download, ca_check)` : ''),
    ],
    ['key_variable', `${KEY_VARIABLE} (Continue's secret, Codex's env_key)`],
  ];
}

function trustSection(inputs: ReportInputs): Lines {
  if (inputs.tls.mode === 'letsencrypt') return [['note', 'the certificate is publicly trusted: no CA file is needed']];
  const privateCa = inputs.tls.mode === 'custom' ? 'if a private CA signed the certificate: ' : '';
  const ca = '"$HOME/slm-copilot-ca.pem"';
  return [
    [
      'vscode',
      `${privateCa}start VS Code with NODE_EXTRA_CA_CERTS=${ca} (e.g. NODE_EXTRA_CA_CERTS=${ca} code .); ` +
        'the Cline and Continue extensions then trust the appliance',
    ],
    ['node_agents', `${privateCa}export NODE_EXTRA_CA_CERTS=${ca} (Cline, Continue CLI, Claude Code)`],
    ['codex', `${privateCa}export CODEX_CA_CERTIFICATE=${ca}`],
    ['python', `${privateCa}SSL_CERT_FILE=${ca} (httpx/openai) or REQUESTS_CA_BUNDLE=${ca} (requests)`],
  ];
}

function examplesSection(inputs: ReportInputs): Lines {
  const endpoint = endpointOf(inputs);
  const curl = `curl ${perVmCa(inputs) ? `--cacert ${CLIENT_CA_FILE} ` : ''}`;
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

/** The one-apps report (`/etc/one-appliance/config`, 0600): the one place the key is shown. Pure. */
export function renderReport(inputs: ReportInputs): FileSpec[] {
  const agents = agentSnippets(clientTarget(inputs));
  const sections: IniSections = [
    ['Status', statusSection(inputs)],
    ['Connection', connectionSection(inputs)],
    ['Engine', engineSection(inputs)],
    ['TLS', tlsSection(inputs)],
    ['Clients', clientsSection(inputs)],
    ['Cline', agentSection(agents.cline, 'vscode_')],
    ['Continue', agentSection(agents.continue)],
    ['Claude Code', agentSection(agents['claude-code'])],
    ['Codex', agentSection(agents.codex)],
    ['Trust', trustSection(inputs)],
    ['Examples', examplesSection(inputs)],
  ];
  return [{ path: inputs.paths.reportFile, text: renderIni(sections, REPORT_HEADER), mode: 0o600 }];
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
        ['fix', 'correct the variables with Update Configuration on the VM: applied without a reboot'],
      ],
    ],
  ];
  return { path: paths.reportFile, text: renderIni(sections, REPORT_HEADER), mode: 0o600 };
}
