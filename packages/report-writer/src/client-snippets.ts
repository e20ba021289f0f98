// The lines a user pastes on a workstation to connect each coding agent to the appliance, and the lines
// that fetch and check the per-VM CA. Pure. The agent suite (packages/rig/agents) runs exactly these
// lines (POSIX sh, its own HOME) against the real gateway, so a wrong line fails an agent test there.
import { CA_DOWNLOAD_PATH } from '@slm-copilot/nginx-config';

/** The CA file on the workstation, as a command word (every line below names it so). */
export const CLIENT_CA_FILE = '~/slm-copilot-ca.pem';
/** The same file as a variable's value (not every shell expands `~` there). */
const CA_VALUE = '"$HOME/slm-copilot-ca.pem"';
/** The variable (and Continue secret) that holds the key where an agent reads it from the environment. */
export const KEY_VARIABLE = 'SLM_COPILOT_API_KEY';
/** Cline's global settings (the CLI's settings schema: `telemetryOptOut`, `autoUpdateEnabled`). */
export const CLINE_SETTINGS_FILE = '~/.cline/data/settings/global-settings.json';
/** Continue's model block (a file in `~/.continue/models/`; the CLI reads it with `--config`). */
export const CONTINUE_MODEL_FILE = '~/.continue/models/slm-copilot.yaml';

/** Claude Code's switches for telemetry, error reports, updates and other non-essential traffic. */
export const CLAUDE_QUIET_ENV: Readonly<Record<string, string>> = Object.freeze({
  DISABLE_TELEMETRY: '1',
  DISABLE_AUTOUPDATER: '1',
  DISABLE_ERROR_REPORTING: '1',
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
});

/** What every agent snippet needs to know about the appliance. */
export interface ClientTarget {
  /** The gateway, `https://HOST[:PORT]` (no path). */
  origin: string;
  /** The model id the appliance serves. */
  model: string;
  /** The API key as it is written into the lines (the key itself in the report). */
  key: string;
  /** Tokens per request (what Cline and Continue are told the model's context is). */
  contextLength: number;
  /** Clients must trust the per-VM CA, kept in CLIENT_CA_FILE (self-signed mode); false: publicly trusted. */
  perVmCa: boolean;
}

/** How to connect one agent: POSIX sh lines, plus an IDE extension's settings said as fields. */
export interface AgentSnippet {
  /** `export NAME=value` lines: every command of this agent needs them in its environment. */
  env: string[];
  /** One-time lines, in order (write a config file, store the key, log in). */
  setup: string[];
  /** The command that runs one task headless; the prompt goes last (see runLine). */
  run: string;
  /** The IDE extension's settings: [field as the extension names it, value]. */
  fields: Array<[field: string, value: string]>;
  /** Advice, one line each. */
  notes: string[];
}

export type AgentId = 'cline' | 'continue' | 'claude-code' | 'codex';

/** A word for a POSIX shell: as is when it holds only inert characters, else single-quoted. */
export function shWord(value: string): string {
  if (/^[A-Za-z0-9_./:=@%+,-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The snippet's task command for one prompt (and extra arguments after it). */
export function runLine(snippet: AgentSnippet, prompt: string, extraArgs: readonly string[] = []): string {
  return [snippet.run, shWord(prompt), ...extraArgs.map(shWord)].join(' ');
}

const exportLine = (assignments: Array<[string, string]>) =>
  `export ${assignments.map(([name, value]) => `${name}=${value}`).join(' ')}`;

/** A line that writes `lines` to `file` (a `~/…` path); `prefix` runs first, in the same subshell. */
function writeFileLine(file: string, lines: readonly string[], opts: { append?: boolean; prefix?: string } = {}) {
  const printf = `printf '%s\\n' ${lines.map(shWord).join(' ')} ${opts.append ? '>>' : '>'} ${file}`;
  return opts.prefix ? `(${opts.prefix} && ${printf})` : printf;
}

const dir = (file: string) => file.slice(0, file.lastIndexOf('/'));

/**
 * Cline: telemetry and auto-update off, then `cline auth`, as the suite runs them, and the VS Code
 * extension's "OpenAI Compatible" fields. The opt-out must be on disk before `cline auth`: without a
 * settings file the CLI counts as opted in and `cline auth` starts its telemetry.
 */
export function clineSnippet(t: ClientTarget): AgentSnippet {
  const baseUrl = `${t.origin}/v1`;
  const settings = JSON.stringify({ telemetryOptOut: true, autoUpdateEnabled: false });
  return {
    env: t.perVmCa ? [exportLine([['NODE_EXTRA_CA_CERTS', CA_VALUE]])] : [],
    setup: [
      writeFileLine(CLINE_SETTINGS_FILE, [settings], { prefix: `set -C && mkdir -p ${dir(CLINE_SETTINGS_FILE)}` }),
      `cline auth -p openai -k ${shWord(t.key)} -m ${shWord(t.model)} -b ${shWord(baseUrl)}`,
    ],
    run: 'cline',
    fields: [
      ['API Provider', 'OpenAI Compatible'],
      ['Base URL', baseUrl],
      ['API Key', t.key],
      ['Model ID', t.model],
      ['Context Window Size', String(t.contextLength)],
    ],
    notes: [
      `the first setup line turns telemetry and auto-update off in ${CLINE_SETTINGS_FILE} before \`cline auth\` ` +
        '(which starts telemetry unless the opt-out is there); it refuses to overwrite an existing file (set -C): ' +
        'set "telemetryOptOut": true and "autoUpdateEnabled": false in it by hand',
      '`cline auth` keeps the provider in ~/.cline/data/settings/providers.json',
    ],
  };
}

/** Continue: the model block for `~/.continue/models/`, the key as a secret in `~/.continue/.env`. */
export function continueSnippet(t: ClientTarget): AgentSnippet {
  const block = [
    'name: SLM-Copilot',
    'version: 1.0.0',
    'schema: v1',
    'models:',
    `  - name: ${t.model} (SLM-Copilot)`,
    '    provider: openai',
    `    model: ${t.model}`,
    `    apiBase: ${t.origin}/v1`,
    `    apiKey: \${{ secrets.${KEY_VARIABLE} }}`,
    '    roles: [chat, edit, apply]',
    '    capabilities: [tool_use]',
    `    defaultCompletionOptions: { contextLength: ${t.contextLength} }`,
  ];
  return {
    env: [
      ...(t.perVmCa ? [exportLine([['NODE_EXTRA_CA_CERTS', CA_VALUE]])] : []),
      exportLine([['CONTINUE_METRICS_ENABLED', '0']]),
    ],
    setup: [
      `mkdir -p ${dir(CONTINUE_MODEL_FILE)} && ${writeFileLine(CONTINUE_MODEL_FILE, block)}`,
      writeFileLine('~/.continue/.env', [`${KEY_VARIABLE}=${t.key}`], { append: true, prefix: 'umask 077' }),
    ],
    run: `cn -p --config ${CONTINUE_MODEL_FILE}`,
    fields: [],
    notes: [
      `the IDE extensions load ${CONTINUE_MODEL_FILE} themselves; \${{ secrets.${KEY_VARIABLE} }} is read ` +
        'from ~/.continue/.env (or <workspace>/.continue/.env, <workspace>/.env)',
    ],
  };
}

/** Claude Code: the Anthropic API of the gateway (origin without /v1), the key as x-api-key. */
export function claudeCodeSnippet(t: ClientTarget): AgentSnippet {
  return {
    env: [
      exportLine([
        ['ANTHROPIC_BASE_URL', shWord(t.origin)],
        ['ANTHROPIC_API_KEY', shWord(t.key)],
      ]),
      exportLine([
        ['ANTHROPIC_MODEL', shWord(t.model)],
        ['ANTHROPIC_DEFAULT_HAIKU_MODEL', shWord(t.model)],
      ]),
      ...(t.perVmCa ? [exportLine([['NODE_EXTRA_CA_CERTS', CA_VALUE]])] : []),
      exportLine(Object.entries(CLAUDE_QUIET_ENV)),
    ],
    setup: [],
    run: 'claude -p --output-format text',
    fields: [],
    notes: [
      `ANTHROPIC_MODEL is the appliance's model id (${t.model}): with a non-Claude name Claude Code sends a ` +
        "system message in mid-conversation, which the appliance's chat template accepts; " +
        'ANTHROPIC_DEFAULT_HAIKU_MODEL sends its background requests to the same model',
      `its default request (24 tools, ~75 KB) may not fit ${t.contextLength} tokens (the engine answers 400 ` +
        '"exceeds the available context size"): `claude --bare --tools Bash,Read` sends ~4 KB',
    ],
  };
}

/** Codex: a provider in `~/.codex/config.toml` (Responses API), the key from the environment. */
export function codexSnippet(t: ClientTarget): AgentSnippet {
  const toml = [
    `model = ${JSON.stringify(t.model)}`,
    'model_provider = "slm-copilot"',
    'check_for_update_on_startup = false',
    '',
    '[model_providers.slm-copilot]',
    'name = "SLM-Copilot"',
    `base_url = ${JSON.stringify(`${t.origin}/v1`)}`,
    `env_key = "${KEY_VARIABLE}"`,
    'wire_api = "responses"',
    '',
    '[analytics]',
    'enabled = false',
  ];
  return {
    env: [
      exportLine([[KEY_VARIABLE, shWord(t.key)]]),
      ...(t.perVmCa ? [exportLine([['CODEX_CA_CERTIFICATE', CA_VALUE]])] : []),
    ],
    setup: [writeFileLine('~/.codex/config.toml', toml, { prefix: 'set -C && mkdir -p ~/.codex' })],
    run: 'codex exec --skip-git-repo-check',
    fields: [],
    notes: [
      'the setup line refuses to overwrite an existing ~/.codex/config.toml (set -C): merge its lines by hand',
      ...(t.perVmCa ? ['Codex trusts the CA only through CODEX_CA_CERTIFICATE, not NODE_EXTRA_CA_CERTS'] : []),
      'wire_api must be "responses": this Codex refuses "chat"',
    ],
  };
}

/** The four agents' snippets for one appliance. */
export function agentSnippets(t: ClientTarget): Record<AgentId, AgentSnippet> {
  return {
    cline: clineSnippet(t),
    continue: continueSnippet(t),
    'claude-code': claudeCodeSnippet(t),
    codex: codexSnippet(t),
  };
}

/** Where the per-VM CA is and what it must hash to. */
export interface CaFetchTarget {
  origin: string;
  /** The VM's address as an SSH client writes it (an IPv6 address without brackets). */
  host: string;
  /** The CA file on the VM (world-readable). */
  caPathOnVm: string;
  /** Its SHA-256 fingerprint, `AA:BB:…` (what openssl prints after `Fingerprint=`). */
  sha256: string;
  /** The SSH login user of the image (Ubuntu cloud images: `ubuntu`; they refuse root). */
  sshUser: string;
}

/** The lines that fetch the per-VM CA to CLIENT_CA_FILE and check it. */
export interface CaFetch {
  /** Over HTTPS from the gateway itself, without a key. */
  download: string;
  /** Over SSH with the image's login user. */
  downloadSsh: string;
  /** Prints the fingerprint of the downloaded file. */
  check: string;
  /** What `check` must print after `Fingerprint=` (its prefix differs between OpenSSL versions). */
  expected: string;
  /** Why `-k` is acceptable here. */
  why: string;
}

export function caFetchSnippet(t: CaFetchTarget): CaFetch {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return {
    download: `curl -k ${shWord(`${t.origin}${CA_DOWNLOAD_PATH}`)} -o ${CLIENT_CA_FILE}`,
    downloadSsh: `scp ${shWord(`${t.sshUser}@${host}:${t.caPathOnVm}`)} ${CLIENT_CA_FILE}`,
    check: `openssl x509 -fingerprint -sha256 -noout -in ${CLIENT_CA_FILE}`,
    expected: t.sha256,
    why:
      '-k: before you have the CA nothing can verify the appliance, so this one download is unauthenticated; ' +
      `trust the file only if the check prints ${t.sha256} (read here, over SSH): if it differs, delete it`,
  };
}
