import { describe, expect, it } from 'vitest';
import { createLogger, generateApiKey } from '@slm-copilot/task-kit';
import { PassThrough } from 'node:stream';
import { ContextError, parseContext, redactConfig, secretsOf } from './parse.js';
import { variables } from './schema.js';

function refused(env: Record<string, string>): ContextError {
  try {
    parseContext(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ContextError);
    return error as ContextError;
  }
  throw new Error(`expected ${JSON.stringify(env)} to be refused`);
}

describe('defaults', () => {
  it('an empty context gives the documented defaults, literally', () => {
    expect(parseContext({})).toEqual({
      apiKey: null,
      extraApiKeys: [],
      engine: 'localai',
      role: 'standalone',
      modelId: 'devstral-small-2',
      contextSize: 65536,
      kvCacheType: 'f16',
      threads: 0,
      parallelSlots: 1,
      maxTokens: 8192,
      promptCachePersist: true,
      hostname: null,
      httpsPort: 443,
      corsOrigins: [],
      rateLimitPerMinute: 120,
      connectionLimit: 32,
      requestTimeoutSeconds: 1800,
      maxBodyMegabytes: 64,
      metrics: true,
      basicAuth: false,
      tls: {
        requestedMode: 'auto',
        mode: 'self-signed',
        certificatePem: null,
        privateKeyPem: null,
        letsEncryptEmail: null,
        acmeDirectory: 'https://acme-v02.api.letsencrypt.org/directory',
      },
    });
  });

  it('empty strings (unanswered user inputs) take the default', () => {
    const env = Object.fromEntries(variables.map((v) => [v.name, '']));
    expect(parseContext(env)).toEqual(parseContext({}));
  });

  it('coerces context strings: numbers, YES/NO, comma lists, auto TLS with a hostname', () => {
    const key = generateApiKey();
    const extra = [generateApiKey(), generateApiKey()];
    const c = parseContext({
      ONEAPP_COPILOT_PASSWORD: key,
      ONEAPP_COPILOT_EXTRA_API_KEYS: ` ${extra[0]}, ${extra[1]} `,
      ONEAPP_COPILOT_CONTEXT_SIZE: ' 49152 ',
      ONEAPP_COPILOT_KV_CACHE_TYPE: ' q4_0 ',
      ONEAPP_COPILOT_METRICS: 'no',
      ONEAPP_COPILOT_BASIC_AUTH: 'YES',
      ONEAPP_COPILOT_HOSTNAME: 'Copilot.Example.COM',
      ONEAPP_COPILOT_ENGINE: 'llama-server',
      ONEAPP_COPILOT_CORS_ORIGINS: 'https://a.example.com,http://localhost:3000',
      OTHER_VARIABLE: 'ignored',
    });
    expect(c.apiKey).toBe(key);
    expect(c.extraApiKeys).toEqual(extra);
    expect(c.contextSize).toBe(49152);
    expect(c.kvCacheType).toBe('q4_0');
    expect(c.metrics).toBe(false);
    expect(c.basicAuth).toBe(true);
    expect(c.hostname).toBe('copilot.example.com');
    expect(c.engine).toBe('llama-server');
    expect(c.corsOrigins).toEqual(['https://a.example.com', 'http://localhost:3000']);
    expect(c.tls.mode).toBe('letsencrypt');
    expect(c.tls.requestedMode).toBe('auto');
  });
});

describe('bad values are refused, naming the variable and what was expected', () => {
  const cases: [string, string, RegExp][] = [
    ['ONEAPP_COPILOT_CONTEXT_SIZE', 'abc', /integer from 2048 to 262144/],
    ['ONEAPP_COPILOT_CONTEXT_SIZE', '1024', /integer from 2048/],
    ['ONEAPP_COPILOT_CONTEXT_SIZE', '32768.5', /integer/],
    ['ONEAPP_COPILOT_THREADS', '-1', /0 \(auto\) to 512/],
    ['ONEAPP_COPILOT_PARALLEL', '0', /1 to 64/],
    ['ONEAPP_COPILOT_KV_CACHE_TYPE', 'Q8_0', /one of: f16, q8_0, q4_0/],
    ['ONEAPP_COPILOT_KV_CACHE_TYPE', 'q5_0', /one of: f16, q8_0, q4_0/],
    ['ONEAPP_COPILOT_KV_CACHE_TYPE', '8', /one of: f16, q8_0, q4_0/],
    ['ONEAPP_COPILOT_MAX_TOKENS', 'lots', /0 \(no cap\) or an integer from 16 to 262144/],
    ['ONEAPP_COPILOT_MAX_TOKENS', '-1', /0 \(no cap\) or an integer from 16 to 262144/],
    ['ONEAPP_COPILOT_MAX_TOKENS', '8', /0 \(no cap\) or an integer from 16 to 262144/],
    ['ONEAPP_COPILOT_MAX_TOKENS', '262145', /0 \(no cap\) or an integer from 16 to 262144/],
    ['ONEAPP_COPILOT_ENGINE', 'ollama', /one of: localai, llama-server/],
    ['ONEAPP_COPILOT_ROLE', 'LB', /one of: standalone, lb, inference/],
    ['ONEAPP_COPILOT_ROLE', 'worker', /one of: standalone, lb, inference/],
    ['ONEAPP_COPILOT_MODEL_ID', 'bad id', /\[A-Za-z0-9._-\]/],
    ['ONEAPP_COPILOT_HOSTNAME', 'bad_host;rm', /DNS name/],
    ['ONEAPP_COPILOT_HOSTNAME', 'a.-b.com', /DNS name/],
    ['ONEAPP_COPILOT_HTTPS_PORT', '80', /other than 80/],
    ['ONEAPP_COPILOT_HTTPS_PORT', '70000', /1 to 65535/],
    ['ONEAPP_COPILOT_TLS_MODE', 'acme', /auto, self-signed, letsencrypt, custom/],
    ['ONEAPP_COPILOT_TLS_CERT', 'not base64!', /base64/],
    ['ONEAPP_COPILOT_TLS_CERT', Buffer.from('hello').toString('base64'), /BEGIN CERTIFICATE/],
    ['ONEAPP_COPILOT_LETSENCRYPT_EMAIL', 'nobody', /e-mail/],
    ['ONEAPP_COPILOT_ACME_DIRECTORY', 'http://insecure.example/dir', /https:\/\//],
    ['ONEAPP_COPILOT_CORS_ORIGINS', 'https://ok.example,javascript:alert(1)', /origins/],
    ['ONEAPP_COPILOT_RATE_LIMIT', 'lots', /0 \(off\) to 100000/],
    ['ONEAPP_COPILOT_CONNECTION_LIMIT', '-5', /0 \(off\) to 10000/],
    ['ONEAPP_COPILOT_REQUEST_TIMEOUT', '5', /30 to 86400/],
    ['ONEAPP_COPILOT_MAX_BODY_SIZE', '0', /1 to 1024/],
    ['ONEAPP_COPILOT_METRICS', 'maybe', /YES or NO/],
    ['ONEAPP_COPILOT_BASIC_AUTH', '2', /YES or NO/],
    ['ONEAPP_COPILOT_PASSWORD', 'short', /16-256 characters/],
    ['ONEAPP_COPILOT_PASSWORD', 'x'.repeat(20) + '"; return 200', /16-256 characters/],
    ['ONEAPP_COPILOT_EXTRA_API_KEYS', 'validkeyvalidkey1,bad key', /16-256 characters/],
  ];
  for (const [name, value, expected] of cases) {
    it(`${name}=${JSON.stringify(value)}`, () => {
      const error = refused({ [name]: value });
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]!.variable).toBe(name);
      expect(error.problems[0]!.expected).toMatch(expected);
      expect(error.message).toContain(name);
    });
  }

  it('ONEAPP_COPILOT_MAX_TOKENS: 0 (no cap) and 16 to 262144 accepted; 1-15 refused with value and bounds', () => {
    for (const ok of ['0', '16', '8192', '262144']) {
      expect(parseContext({ ONEAPP_COPILOT_MAX_TOKENS: ok }).maxTokens).toBe(Number(ok));
    }
    for (const bad of ['1', '15']) {
      const error = refused({ ONEAPP_COPILOT_MAX_TOKENS: bad });
      expect(error.message).toContain(
        `ONEAPP_COPILOT_MAX_TOKENS = "${bad}": expected 0 (no cap) or an integer from 16 to 262144`,
      );
    }
  });

  it('lists every bad variable in one error, with non-secret values shown', () => {
    const error = refused({
      ONEAPP_COPILOT_CONTEXT_SIZE: 'big',
      ONEAPP_COPILOT_ENGINE: 'vllm',
      ONEAPP_COPILOT_PARALLEL: '999',
    });
    expect(error.problems.map((p) => p.variable).sort()).toEqual([
      'ONEAPP_COPILOT_CONTEXT_SIZE',
      'ONEAPP_COPILOT_ENGINE',
      'ONEAPP_COPILOT_PARALLEL',
    ]);
    expect(error.message).toContain('ONEAPP_COPILOT_CONTEXT_SIZE = "big"');
    expect(error.message).toContain('ONEAPP_COPILOT_ENGINE = "vllm"');
  });

  it('shows control characters escaped, so a newline in a value is visible', () => {
    const error = refused({ ONEAPP_COPILOT_MODEL_ID: 'model\nproxy_pass http://evil;' });
    expect(error.message).toContain('"model\\nproxy_pass http://evil;"');
  });

  it('refuses unknown ONEAPP_COPILOT_* variables (typos) but ignores other variables', () => {
    const error = refused({ ONEAPP_COPILOT_CONTEXTSIZE: '4096', ETH0_IP: '10.0.0.1' });
    // the value of an unknown name is not shown: it may be a misspelled secret
    expect(error.message).toContain('ONEAPP_COPILOT_CONTEXTSIZE = [hidden]');
    expect(error.problems).toEqual([
      expect.objectContaining({
        variable: 'ONEAPP_COPILOT_CONTEXTSIZE',
        expected: expect.stringMatching(/misspelled/),
      }),
    ]);
  });

  it('cross-field rules: letsencrypt needs a hostname, custom needs certificate and key', () => {
    const le = refused({ ONEAPP_COPILOT_TLS_MODE: 'letsencrypt' });
    expect(le.problems).toEqual([
      expect.objectContaining({
        variable: 'ONEAPP_COPILOT_HOSTNAME',
        expected: expect.stringMatching(/required when ONEAPP_COPILOT_TLS_MODE is letsencrypt/),
      }),
    ]);
    const custom = refused({ ONEAPP_COPILOT_TLS_MODE: 'custom' });
    expect(custom.problems.map((p) => p.variable).sort()).toEqual([
      'ONEAPP_COPILOT_TLS_CERT',
      'ONEAPP_COPILOT_TLS_KEY',
    ]);
  });

  it('accepts a custom certificate and key given as base64 PEM', () => {
    const cert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const key = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
    const c = parseContext({
      ONEAPP_COPILOT_TLS_MODE: 'custom',
      ONEAPP_COPILOT_TLS_CERT: Buffer.from(cert).toString('base64'),
      ONEAPP_COPILOT_TLS_KEY: Buffer.from(key)
        .toString('base64')
        .replace(/(.{20})/g, '$1\n'),
    });
    expect(c.tls).toMatchObject({ mode: 'custom', certificatePem: cert, privateKeyPem: key });
  });
});

describe('secrets', () => {
  const secretKey = 'Sup3rSecretKeyValue-123456';
  it('never appear in error text', () => {
    for (const env of <Record<string, string>[]>[
      { ONEAPP_COPILOT_PASSWORD: `${secretKey} with space` },
      { ONEAPP_COPILOT_EXTRA_API_KEYS: `${secretKey},${secretKey}` },
      { ONEAPP_COPILOT_TLS_KEY: Buffer.from(`junk ${secretKey}`).toString('base64') },
    ]) {
      const error = refused(env);
      expect(error.message).not.toContain(secretKey);
      expect(error.message).not.toContain(Object.values(env)[0]);
      expect(JSON.stringify(error.problems)).not.toContain(secretKey);
    }
  });
  it('are masked in the redacted config and in logs', () => {
    const config = parseContext({ ONEAPP_COPILOT_PASSWORD: secretKey, ONEAPP_COPILOT_EXTRA_API_KEYS: `${secretKey}2` });
    expect(JSON.stringify(redactConfig(config))).not.toContain(secretKey);
    const stream = new PassThrough();
    let logged = '';
    stream.on('data', (c: Buffer) => (logged += c.toString()));
    const log = createLogger({ stream });
    for (const s of secretsOf(config)) log.addSecret(s);
    log.info(`config: ${JSON.stringify(config)}`);
    expect(logged).not.toContain(secretKey);
    expect(logged).toContain('config:');
  });
});

/** What a text gives away about a secret: its length as a number, or any 3-character run of it. */
function leaks(text: string, secret: string): string[] {
  const found = new Set<string>();
  if (new RegExp(`(^|[^0-9])${secret.length}([^0-9]|$)`).test(text)) found.add(`length ${secret.length}`);
  if (text.includes('*'.repeat(secret.length))) found.add('asterisks of its length');
  for (let i = 0; i + 3 <= secret.length; i++) {
    const run = secret.slice(i, i + 3);
    if (text.includes(run)) found.add(`run "${run}"`);
  }
  return [...found];
}

describe('masked secrets reveal neither length nor characters', () => {
  // chosen so that no 3-character run occurs in the messages' own text
  const refusedCases: Array<[string, string]> = [
    ['ONEAPP_COPILOT_PASSWORD', 'Vq7Xz2W'], // too short
    ['ONEAPP_COPILOT_PASSWORD', 'Vq7Xz2Wm4Pt9Rb6Ny3Lh!kG'], // a character outside the alphabet
    ['ONEAPP_COPILOT_EXTRA_API_KEYS', 'Jc5Hd8Fs2Gk4Qw'], // too short
    ['ONEAPP_COPILOT_EXTRA_API_KEYS', 'Bn4Mj7Yh2Ux5Ic8Ol3Ia#'],
    ['ONEAPP_COPILOT_TLS_KEY', Buffer.from('Ry6Ot4Wp2Zq8Xa3Sd7Cf').toString('base64')],
  ];
  for (const [name, secret] of refusedCases) {
    it(`a refused ${name} = ${secret.length} characters shows only that it was set`, () => {
      const error = refused({ [name]: secret });
      expect(error.problems[0]!.shown).toBe('[hidden]');
      expect(leaks(error.message, secret)).toEqual([]);
      expect(leaks(JSON.stringify(error.problems), secret)).toEqual([]);
    });
  }

  it('a redacted config shows accepted secrets as set, nothing more', () => {
    const password = 'Vb8Nq3Zr5Tw7Ky2Mx6PdGj';
    const extra = 'Hs9Lc4Vf6Bn2Xq8Wr5Tz3Mk';
    const config = parseContext({ ONEAPP_COPILOT_PASSWORD: password, ONEAPP_COPILOT_EXTRA_API_KEYS: extra });
    const keyPem = '-----BEGIN PRIVATE KEY-----\nQm3Vz8Kd5Rx2Pw7Nt4Yh\n-----END PRIVATE KEY-----\n';
    const redacted = redactConfig({ ...config, tls: { ...config.tls, privateKeyPem: keyPem } });
    const text = JSON.stringify(redacted);
    expect(leaks(text, password)).toEqual([]);
    expect(leaks(text, extra)).toEqual([]);
    expect(leaks(text, 'Qm3Vz8Kd5Rx2Pw7Nt4Yh')).toEqual([]);
    expect(redacted).toMatchObject({
      apiKey: '[hidden]',
      extraApiKeys: ['[hidden]'],
      tls: { privateKeyPem: '[hidden]' },
    });
  });
});
