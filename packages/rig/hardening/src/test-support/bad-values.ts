// Bad values for every ONEAPP_* variable: at least one of each kind. A variable added to the schema
// without cases here fails context-input.test.ts.
//  - type: a value of the wrong kind or shape (text for a number, a number-like word for an enum, …)
//  - range: the right kind but outside what is allowed (bounds, lengths, counts, reserved values)
//  - injection: quotes, newlines, `$()`, `;`, `{`, `}` — what could end a directive or a unit line
export type BadKind = 'type' | 'range' | 'injection';

export interface BadValue {
  kind: BadKind;
  value: string;
}

const KEY = 'sk-0123456789abcdef';
const b64 = (s: string) => Buffer.from(s).toString('base64');
const cases = (type: string[], range: string[], injection: string[]): BadValue[] => [
  ...type.map((value) => ({ kind: 'type' as const, value })),
  ...range.map((value) => ({ kind: 'range' as const, value })),
  ...injection.map((value) => ({ kind: 'injection' as const, value })),
];

/** Integers: a word and a decimal, both bounds ±1, and directive/shell syntax after a valid number. */
const integer = (min: number, max: number, valid: number, extra: string[] = []): BadValue[] =>
  cases(
    ['many', `${valid}.5`, '0x10'],
    [String(min - 1), String(max + 1), ...extra],
    [`${valid};`, `${valid} }`, `$(echo ${valid})`, `${valid}\nlimit_req off;`, `"${valid}"`],
  );

const boolean = (): BadValue[] =>
  cases(['maybe', '2'], ['YESS', '-1'], ['yes;', 'YES\n}', '$(echo YES)', "'NO'", 'no {']);

export const BAD_VALUES: Record<string, BadValue[]> = {
  ONEAPP_COPILOT_PASSWORD: cases(
    ['{"key":"x"}', '["sk-0123456789abcdef"]'],
    ['short-key', 'k'.repeat(257)],
    [`${KEY}";`, `${KEY}\nreturn 200;`, `${KEY}$(id)`, `${KEY};`, `${KEY}{`, `${KEY}}`, `${KEY}'`, `${KEY} \\`],
  ),
  ONEAPP_COPILOT_EXTRA_API_KEYS: cases(
    ['{"a":1}', '["x"]'],
    ['too-short', `${KEY}-a,${KEY}-a`, Array.from({ length: 65 }, (_, i) => `${KEY}-${i}`).join(',')],
    [`${KEY}";`, `${KEY}$(id)`, `${KEY};`, `${KEY}{x}`, `${KEY}'x`],
  ),
  ONEAPP_COPILOT_ENGINE: cases(
    ['1', 'LocalAI'],
    ['ollama', 'vllm'],
    ['localai;', 'llama-server\nExecStartPre=/bin/sh', '$(echo localai)', 'localai {', '"localai"'],
  ),
  ONEAPP_COPILOT_ROLE: cases(
    ['1', 'LB'],
    ['worker', 'loadbalancer'],
    ['lb;', 'inference\nExecStartPre=/bin/sh', '$(echo lb)', 'lb {', '"lb"'],
  ),
  ONEAPP_COPILOT_MODEL_ID: cases(
    ['{"id":1}', '-starts-with-dash'],
    ['m'.repeat(65), '.hidden'],
    [
      'devstral;',
      'devstral"',
      "devstral'",
      'dev stral',
      'devstral\n--host 0.0.0.0',
      '$(id)',
      'devstral{',
      'devstral}',
      'a/../../etc',
    ],
  ),
  ONEAPP_COPILOT_CONTEXT_SIZE: integer(2048, 262144, 4096, ['32k']),
  ONEAPP_COPILOT_KV_CACHE_TYPE: cases(['8', 'F16'], ['q5_0', 'q8'], ['q8_0;', 'f16\n-fa 0', '$(echo q8_0)', 'q4_0 {']),
  ONEAPP_COPILOT_THREADS: integer(0, 512, 4),
  ONEAPP_COPILOT_PARALLEL: integer(1, 64, 2),
  ONEAPP_COPILOT_MAX_TOKENS: integer(0, 262144, 4096, ['1', '15', '8k']),
  ONEAPP_COPILOT_PROMPT_CACHE_PERSIST: boolean(),
  ONEAPP_COPILOT_HOSTNAME: cases(
    ['https://copilot.example.com', 'copilot_example.com'],
    [`${'a'.repeat(64)}.example.com`, `${'abcdefgh.'.repeat(28)}com`, '-copilot.example.com'],
    [
      'copilot.example.com;',
      'copilot.example.com\nDNS.2 = evil.example',
      '$(hostname)',
      'copilot{.example.com',
      'copilot".example.com',
    ],
  ),
  ONEAPP_COPILOT_HTTPS_PORT: integer(1, 65535, 8443, ['80', '8080', '8081']),
  ONEAPP_COPILOT_TLS_MODE: cases(
    ['1', 'SELF-SIGNED'],
    ['manual', 'acme'],
    ['auto;', 'custom\n}', '$(echo auto)', '"auto"', 'auto {'],
  ),
  ONEAPP_COPILOT_TLS_CERT: cases(
    [b64('hello, not a certificate'), b64('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')],
    ['A'.repeat(65537)],
    ['LS0t;', 'LS0t$(id)', 'LS0t{}', 'LS0t"', "LS0t'"],
  ),
  ONEAPP_COPILOT_TLS_KEY: cases(
    [b64('not a key'), b64('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')],
    ['A'.repeat(65537), b64('-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n')],
    ['LS0t;', 'LS0t$(id)', 'LS0t{}', 'LS0t"', "LS0t'"],
  ),
  ONEAPP_COPILOT_LETSENCRYPT_EMAIL: cases(
    ['ops', 'ops@localhost'],
    [`${'o'.repeat(250)}@example.com`, 'ops@-example.com'],
    [
      'ops@example.com;',
      'ops@example.com\n--server=https://evil.example',
      '$(id)@example.com',
      'ops"@example.com',
      'ops@example.com{',
    ],
  ),
  ONEAPP_COPILOT_ACME_DIRECTORY: cases(
    ['acme.example.com/directory', 'http://acme.example.com/directory'],
    [
      `https://acme.example.com/${'d'.repeat(2048)}`,
      'https://acme.example.com:123456/dir',
      'https://acme.example.com/dir?x=1',
      'https://acme.example.com/dir#f',
    ],
    [
      'https://acme.example.com/dir;',
      'https://acme.example.com/$(id)',
      'https://acme.example.com/dir\n--server',
      'https://acme.example.com/{dir}',
      'https://acme.example.com/"dir',
    ],
  ),
  ONEAPP_COPILOT_CORS_ORIGINS: cases(
    ['ide.example.com', 'ftp://ide.example.com', 'https://ide.example.com/path'],
    ['https://ide.example.com:123456', Array.from({ length: 65 }, (_, i) => `https://ide${i}.example.com`).join(',')],
    [
      'https://ide.example.com;',
      'https://ide.example.com"',
      'https://ide.example.com{',
      'https://$(id).example.com',
      "https://ide.example.com'",
    ],
  ),
  ONEAPP_COPILOT_RATE_LIMIT: integer(0, 100000, 60, ['10r/m']),
  ONEAPP_COPILOT_CONNECTION_LIMIT: integer(0, 10000, 8),
  ONEAPP_COPILOT_REQUEST_TIMEOUT: integer(30, 86400, 600, ['30s']),
  ONEAPP_COPILOT_MAX_BODY_SIZE: integer(1, 1024, 64, ['64m']),
  ONEAPP_COPILOT_METRICS: boolean(),
  ONEAPP_COPILOT_BASIC_AUTH: boolean(),
};
