import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { appliancePaths, parseContext, variableByName, type Config } from '@slm-copilot/context-schema';
import type { FileSet } from '@slm-copilot/task-kit';
import { describe, expect, it } from 'vitest';
import { mutation } from '../test-support/mutate.js';
import { basicCredentialPatterns, namedKeys } from './keys.js';
import {
  assertSafe,
  gatewayFiles,
  renderGateway,
  renderUnconfigured,
  tlsDirectives,
  type GatewayRenderOptions,
} from './render.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.join(here, '..', 'fixtures', 'default');
const paths = appliancePaths('');
const KEY = 'sk-default-main-key-0123456789';
const options: GatewayRenderOptions = {
  paths,
  keys: { main: KEY, extra: [] },
  tls: { certificate: paths.tls.cert, key: paths.tls.key },
};
const render = (env: Record<string, string> = {}, opts: Partial<GatewayRenderOptions> = {}) =>
  renderGateway(parseContext(env), { ...options, ...opts });
const text = (files: ReturnType<typeof render>, name: keyof ReturnType<typeof gatewayFiles>) =>
  files.find((f) => f.path === gatewayFiles(paths)[name])!.text;

describe('renderGateway: exact text for the default configuration', () => {
  const files = render();

  it('renders the site and its snippets at the appliance paths, with modes and the key file owner', () => {
    expect(files.map((f) => [f.path, (f.mode ?? 0o644).toString(8), f.owner ?? null])).toEqual([
      ['/etc/nginx/conf.d/slm-copilot.conf', '644', null],
      ['/etc/nginx/slm-copilot/api-keys.conf', '600', 'root:root'],
      ['/etc/nginx/slm-copilot/headers.conf', '644', null],
      ['/etc/nginx/slm-copilot/proxy.conf', '644', null],
      ['/etc/nginx/slm-copilot/errors.conf', '644', null],
      ['/etc/nginx/slm-copilot/ready.json', '644', null],
    ]);
  });

  // The fixtures are the reviewed expected output; after a deliberate change, regenerate them with
  // UPDATE_FIXTURES=1 pnpm --filter @slm-copilot/nginx-config exec vitest run src/render.test.ts and review the diff.
  for (const name of ['slm-copilot.conf', 'api-keys.conf', 'headers.conf', 'proxy.conf', 'errors.conf', 'ready.json']) {
    it(`${name} matches fixtures/default/${name} exactly`, async () => {
      const file = files.find((f) => path.basename(f.path) === name)!;
      const fixture = path.join(fixtures, name);
      if (process.env.UPDATE_FIXTURES === '1') {
        await mkdir(fixtures, { recursive: true });
        await writeFile(fixture, file.text);
      }
      expect(file.text).toBe(await readFile(fixture, 'utf8'));
    });
  }

  it('is deterministic', () => {
    expect(render()).toEqual(files);
  });
});

describe('renderGateway: configuration variants', () => {
  it('probes llama-server readiness on /health', () => {
    const site = text(render({ ONEAPP_COPILOT_ENGINE: 'llama-server' }), 'site');
    expect(site).toContain('        proxy_pass http://slm_copilot_engine/health;\n        proxy_method GET;\n');
    expect(site).not.toContain('backend/monitor');
  });

  it('turns limits off at 0 and leaves the burst out below 10 requests per minute', () => {
    const off = text(render({ ONEAPP_COPILOT_RATE_LIMIT: '0', ONEAPP_COPILOT_CONNECTION_LIMIT: '0' }), 'site');
    expect(off).not.toMatch(/^\s*limit_req /m);
    expect(off).not.toMatch(/^\s*limit_conn /m);
    expect(off).not.toMatch(/^limit_req_zone/m);
    expect(off).toContain('# limit_req: off (ONEAPP_COPILOT_RATE_LIMIT=0)');
    const one = text(render({ ONEAPP_COPILOT_RATE_LIMIT: '1' }), 'site');
    expect(one).toContain('limit_req_zone $slm_limit_key zone=slm_copilot_req:10m rate=1r/m;');
    expect(one).toContain('        limit_req zone=slm_copilot_req;\n');
    expect(text(render({ ONEAPP_COPILOT_RATE_LIMIT: '1' }), 'errors')).toContain('add_header Retry-After "60" always;');
  });

  it('renders the configured timeout, body size, HTTPS port and HTTP port', () => {
    const files = render(
      { ONEAPP_COPILOT_REQUEST_TIMEOUT: '600', ONEAPP_COPILOT_MAX_BODY_SIZE: '8', ONEAPP_COPILOT_HTTPS_PORT: '8443' },
      { httpPort: 8000 },
    );
    expect(text(files, 'proxy')).toContain('proxy_read_timeout 600s;\nproxy_send_timeout 600s;\n');
    const site = text(files, 'site');
    expect(site).toContain('    client_max_body_size 8m;\n');
    expect(site).toContain('    listen 8443 ssl http2 default_server;\n');
    expect(site).toContain('    listen 8000 default_server;\n');
    expect(site).toContain('        return 301 https://$host:8443$request_uri;\n');
  });

  it('echoes only configured CORS origins; * answers any origin; Vary only for a list', () => {
    const list = render({ ONEAPP_COPILOT_CORS_ORIGINS: 'https://a.example.com,https://b.example.com:8443' });
    expect(text(list, 'site')).toContain(
      'map $http_origin $slm_cors_origin {\n    default "";\n    "https://a.example.com" $http_origin;\n    "https://b.example.com:8443" $http_origin;\n}\n',
    );
    expect(text(list, 'headers')).toContain('add_header Vary "Origin" always;\n');
    const any = render({ ONEAPP_COPILOT_CORS_ORIGINS: '*' });
    expect(text(any, 'site')).toContain('map $http_origin $slm_cors_origin {\n    "" "";\n    default "*";\n}\n');
    expect(text(any, 'headers')).not.toContain('Vary');
  });

  it('maps every key (names only elsewhere); Basic auth adds three patterns per key', () => {
    const files = render(
      { ONEAPP_COPILOT_BASIC_AUTH: 'YES' },
      { keys: { main: KEY, extra: ['sk.extra+two/x=y~z-0123', KEY] } },
    );
    const keys = text(files, 'keys');
    expect(keys).toContain('    "~^(?i:bearer)\\s+sk-default-main-key-0123456789\\s*$" main;\n');
    expect(keys).toContain('    "~^(?i:bearer)\\s+sk\\.extra\\+two/x=y~z-0123\\s*$" extra-1;\n');
    expect(keys).toContain('    "~^sk\\.extra\\+two/x=y~z-0123$" extra-1;\n');
    // 2 distinct keys x 3 alignments (the repeated main key counted once)
    expect(keys.match(/\(\?i:basic\)/g)).toHaveLength(6);
    for (const f of files) if (f.path !== gatewayFiles(paths).keys) expect(f.text).not.toContain(KEY);
  });

  it('puts the key file owner only when asked (tests pass null)', () => {
    const files = render({}, { keyFileOwner: null });
    expect(files.find((f) => f.path.endsWith('api-keys.conf'))!.owner).toBeUndefined();
  });

  it('renders metrics off as a 404 after the key check', () => {
    const site = text(render({ ONEAPP_COPILOT_METRICS: 'NO' }), 'site');
    expect(site).toContain('        error_page 404 = @slm_copilot_metrics_disabled;\n');
    const start = site.indexOf('    location = /metrics {\n');
    const block = site.slice(start, site.indexOf('\n    }\n', start));
    const auth = block.indexOf('        auth_request /_slm_copilot_auth;\n');
    expect(auth).toBeGreaterThan(0);
    expect(block.indexOf('        try_files /slm-copilot-metrics-disabled =404;')).toBeGreaterThan(auth);
  });
});

describe('one HTTPS server renderer for every site', () => {
  const config = parseContext({ ONEAPP_COPILOT_HTTPS_PORT: '8443' });
  const site = (files: FileSet) => files.find((f) => f.path === paths.nginx.siteFile)!.text;
  const configured = render({ ONEAPP_COPILOT_HTTPS_PORT: '8443' });
  const unconfigured = renderUnconfigured('ONEAPP_COPILOT_HTTPS_PORT = "x": expected a port', {
    paths,
    tls: options.tls,
    httpsPort: config.httpsPort,
  });
  /** The TLS lines of a site: its HTTPS listeners and every ssl_* directive (the HTTP server has none). */
  const tlsLines = (files: FileSet) =>
    site(files)
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('ssl_') || / ssl http2 default_server;$/.test(l));
  /** What differs between the TLS lines of two renders (empty = the same settings). */
  const tlsDifference = (a: FileSet, b: FileSet) => {
    const [x, y] = [tlsLines(a), tlsLines(b)];
    return [...x.filter((l) => !y.includes(l)), ...y.filter((l) => !x.includes(l))];
  };

  it('the unconfigured site carries exactly the TLS settings of the configured one', () => {
    expect(tlsLines(configured)).toEqual(tlsLines(unconfigured));
    expect(tlsDifference(configured, unconfigured)).toEqual([]);
    // … which are those of the one renderer, including the settings that once drifted
    const directives = tlsDirectives(options.tls);
    expect(tlsLines(unconfigured).filter((l) => l.startsWith('ssl_'))).toEqual(directives);
    for (const d of ['ssl_ecdh_curve ', 'ssl_session_cache ', 'ssl_session_timeout ', 'ssl_session_tickets off;']) {
      expect(
        directives.some((l) => l.startsWith(d)),
        d,
      ).toBe(true);
    }
  });

  it('the comparison fails when the unconfigured site loses a TLS directive (mutation)', () => {
    for (const dropped of [/^\s*ssl_session_tickets off;\n/m, /^\s*ssl_ecdh_curve [^\n]*\n/m]) {
      const broken = mutation('slm-copilot.conf', dropped, '')(unconfigured);
      expect(tlsDifference(configured, broken)).toHaveLength(1);
    }
  });
});

describe('bounds come from the context schema', () => {
  const base = parseContext({});
  const cases: Array<[string, keyof Config, RegExp]> = [
    ['ONEAPP_COPILOT_HTTPS_PORT', 'httpsPort', /HTTPS port/],
    ['ONEAPP_COPILOT_RATE_LIMIT', 'rateLimitPerMinute', /rate limit/],
    ['ONEAPP_COPILOT_CONNECTION_LIMIT', 'connectionLimit', /connection limit/],
    ['ONEAPP_COPILOT_REQUEST_TIMEOUT', 'requestTimeoutSeconds', /request timeout/],
    ['ONEAPP_COPILOT_MAX_BODY_SIZE', 'maxBodyMegabytes', /body size limit/],
  ];

  it("accepts each number at the schema's minimum and maximum and refuses one step outside", () => {
    for (const [name, field, what] of cases) {
      const { minimum, maximum } = variableByName.get(name)!;
      expect([minimum, maximum], name).not.toContain(undefined);
      const at = (value: number) => () => renderGateway({ ...base, [field]: value }, options);
      expect(at(minimum!), `${name}=${minimum}`).not.toThrow();
      expect(at(maximum!), `${name}=${maximum}`).not.toThrow();
      expect(at(minimum! - 1), `${name}=${minimum! - 1}`).toThrow(what);
      expect(at(maximum! + 1), `${name}=${maximum! + 1}`).toThrow(what);
      expect(at(minimum! - 1), name).toThrow(new RegExp(`\\(${name}\\) = .*from ${minimum} to ${maximum}$`));
    }
  });
});

describe('renderer-level injection guard', () => {
  const base = parseContext({});
  const withConfig = (patch: Partial<Config>) => () => renderGateway({ ...base, ...patch }, options);

  it('refuses ; { } quotes, backslashes, $ and whitespace in any interpolated string', () => {
    for (const bad of ['a;b', 'a{b', 'a}b', 'a"b', "a'b", 'a\\b', 'a$b', 'a b', 'a\nb', 'a\rb', 'a`b', 'a\tb']) {
      expect(() => assertSafe(bad, 'test value'), JSON.stringify(bad)).toThrow(/refusing to render test value/);
    }
    expect(assertSafe('https://ide.example.com:8443', 'origin')).toBe('https://ide.example.com:8443');
  });

  it('refuses values that bypassed the schema, wherever they would land', () => {
    expect(withConfig({ corsOrigins: ['https://a.example.com; return 200'] })).toThrow(/CORS origin/);
    expect(withConfig({ corsOrigins: ['https://a.example.com"'] })).toThrow(/CORS origin/);
    expect(withConfig({ modelId: 'x;proxy_pass http://evil' })).toThrow(/model id/);
    expect(withConfig({ modelId: "x'}" })).toThrow(/model id/);
    expect(withConfig({ httpsPort: 0 })).toThrow(/HTTPS port/);
    expect(withConfig({ rateLimitPerMinute: -1 })).toThrow(/rate limit/);
    expect(withConfig({ maxBodyMegabytes: 1.5 })).toThrow(/body size/);
    expect(withConfig({ requestTimeoutSeconds: Number.NaN })).toThrow(/request timeout/);
    expect(() =>
      renderGateway(base, { ...options, tls: { certificate: '/etc/x.crt;\ninclude /etc/shadow', key: paths.tls.key } }),
    ).toThrow(/certificate path/);
    expect(() =>
      renderGateway(base, { ...options, paths: { ...paths, engine: { ...paths.engine, host: '127.0.0.1}' } } }),
    ).toThrow(/engine host/);
    expect(() =>
      renderGateway(base, { ...options, paths: { ...paths, nginx: { ...paths.nginx, acmeWebroot: '/var/www/a b' } } }),
    ).toThrow(/ACME webroot/);
    expect(() => renderGateway(base, { ...options, listenAddresses: ['127.0.0.1 ssl;'] })).toThrow(/listen address/);
    expect(() => renderGateway(base, { ...options, httpPort: 443 })).toThrow(/both 443/);
  });

  it('refuses keys outside the key alphabet without printing them', () => {
    const bad = 'sk-0123456789abcdef"; }';
    expect(() => renderGateway(base, { ...options, keys: { main: bad, extra: [] } })).toThrow(/API key "main"/);
    try {
      namedKeys({ main: KEY, extra: [bad] });
    } catch (e) {
      expect((e as Error).message).not.toContain(bad);
    }
  });
});

describe('Basic credentials patterns (any user name, password = key)', () => {
  const matches = (key: string, credentials: string) =>
    basicCredentialPatterns(key).some((p) =>
      new RegExp(`^${p}$`).test(Buffer.from(credentials, 'latin1').toString('base64')),
    );

  it('match user:key for every user-name length and key alphabet character', () => {
    const keys = [
      'sk-default-main-key-0123456789',
      'sk.extra+two/x=y~z-0123',
      'ABCDEFGHIJKLMNOP',
      'abcdefghijklmnopq',
      '0123456789-._~+/=ab',
    ];
    for (const key of keys) {
      for (let n = 0; n < 12; n++) {
        const user = 'uvwxyz@é.:'.repeat(2).slice(0, n);
        expect(matches(key, `${user}:${key}`), `${JSON.stringify(user)}:${key}`).toBe(true);
      }
    }
  });

  it('do not match another password, a missing colon or a key with extra characters', () => {
    const key = 'sk-default-main-key-0123456789';
    for (let n = 0; n < 9; n++) {
      const user = 'abcdefghi'.slice(0, n);
      expect(matches(key, `${user}:${key}x`)).toBe(false);
      expect(matches(key, `${user}:x${key.slice(1)}`)).toBe(false);
      expect(matches(key, `${user}${key}`)).toBe(false);
      expect(matches(key, `${user}:${key.slice(0, -1)}`)).toBe(false);
      expect(matches(key, `${user};${key}`)).toBe(false);
    }
  });
});
