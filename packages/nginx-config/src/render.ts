import path from 'node:path';
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import type { FileSet, FileSpec } from '@slm-copilot/task-kit';
import { TaskError } from '@slm-copilot/task-kit';
import { basicCredentialPatterns, namedKeys, regexLiteral, type ResolvedKeys } from './keys.js';

/** The certificate chain and key nginx serves (self-signed leaf, operator's certificate, or Let's Encrypt). */
export interface ServedCertificate {
  /** PEM chain (leaf first). */
  certificate: string;
  key: string;
}

export interface GatewayRenderOptions {
  paths: AppliancePaths;
  /** The resolved keys: the main key (context or generated) and the extras. */
  keys: ResolvedKeys;
  /** Which certificate files to serve. */
  tls: ServedCertificate;
  /** Plain-HTTP listener (redirect + ACME http-01 webroot); 80 in the appliance, a free port in tests. */
  httpPort?: number;
  /** Addresses to listen on: `*` (all IPv4), `[::]` (all IPv6) or literal IPs. Default: both wildcards. */
  listenAddresses?: readonly string[];
  /** Where nginx writes our access and error logs (default `<prefix>/var/log/nginx`, rotated by Debian's logrotate). */
  logDir?: string;
  /** Owner of the key file; `null` leaves it to the writer (tests). Default `root:root` (only nginx's master reads it). */
  keyFileOwner?: string | null;
  /** Requests allowed above the rate before 429 (default: a tenth of the per-minute rate, rounded down). */
  rateLimitBurst?: number;
}

/** Files of the gateway, by role (paths are absolute, as inside the appliance). */
export interface GatewayFiles {
  site: string;
  keys: string;
  headers: string;
  proxy: string;
  errors: string;
  ready: string;
}

export function gatewayFiles(paths: AppliancePaths): GatewayFiles {
  const s = (name: string) => path.join(paths.nginx.snippetsDir, name);
  return {
    site: paths.nginx.siteFile,
    keys: s('api-keys.conf'),
    headers: s('headers.conf'),
    proxy: s('proxy.conf'),
    errors: s('errors.conf'),
    ready: s('ready.json'),
  };
}

/** Headers a browser may send cross-origin: ours, and those the official OpenAI SDKs add. */
export const CORS_ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Accept',
  'X-Api-Key',
  'OpenAI-Organization',
  'OpenAI-Project',
  'OpenAI-Beta',
  'X-Stainless-Arch',
  'X-Stainless-Lang',
  'X-Stainless-OS',
  'X-Stainless-Package-Version',
  'X-Stainless-Retry-Count',
  'X-Stainless-Runtime',
  'X-Stainless-Runtime-Version',
  'X-Stainless-Timeout',
  'X-Stainless-Helper-Method',
  'X-Stainless-Poll-Helper',
  'X-Stainless-Custom-Poll-Interval',
];
export const CORS_ALLOWED_METHODS = 'GET, POST, DELETE, OPTIONS';
export const CORS_MAX_AGE_SECONDS = 7200;
export const REALM = 'slm-copilot';

/**
 * Mozilla "intermediate" (TLS 1.2 + 1.3; ECDHE + AEAD only; DHE left out: it needs a dhparam file),
 * in this order with ssl_prefer_server_ciphers on (testssl.sh rates "no server cipher order" HIGH).
 */
export const TLS_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

// ---------------------------------------------------------------------------------------------
// Renderer-level safety: every interpolated string is checked, whatever the schema already did.

const UNSAFE = /[;{}"'`\\$\s\x00-\x1f\x7f]/;

/** Refuses a value that could end a directive, open/close a block, quote, escape or expand a variable. */
export function assertSafe(value: string, what: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new TaskError(`internal: ${what} is empty`);
  const bad = UNSAFE.exec(value);
  if (bad) {
    const ch = JSON.stringify(bad[0]);
    throw new TaskError(`refusing to render ${what}: it contains ${ch}, which could change the nginx configuration`);
  }
  return value;
}

function assertInt(value: number, what: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TaskError(`refusing to render ${what} = ${String(value)}: expected an integer from ${min} to ${max}`);
  }
  return value;
}

/** `"value"` after the safety check (nginx accepts every path and token quoted). */
const q = (value: string, what: string) => `"${assertSafe(value, what)}"`;

function json(value: unknown): string {
  const text = JSON.stringify(value);
  // Our own messages only; still make sure they cannot break out of the single-quoted nginx string.
  if (/['\\$\n\r]/.test(text)) throw new TaskError(`internal: JSON body ${text} is not safe in an nginx string`);
  return `'${text}'`;
}

export function openAiError(message: string, type: string, code: string | null): string {
  return json({ error: { message, type, param: null, code } });
}

// ---------------------------------------------------------------------------------------------

interface Ctx {
  config: Config;
  paths: AppliancePaths;
  tls: ServedCertificate;
  files: GatewayFiles;
  httpPort: number;
  httpsPort: number;
  listen: string[];
  logDir: string;
  rate: number;
  burst: number;
  conn: number;
  timeout: number;
}

function listenLines(addresses: readonly string[], port: number, extra: string): string[] {
  return addresses.map((a) => {
    const addr = a === '*' ? '' : `${assertSafe(a, 'listen address')}:`;
    return `    listen ${addr}${port}${extra} default_server;`;
  });
}

/**
 * Errors nginx can raise while reading the request line (bad request, URI too long, headers too
 * large, timeout) go to internal URIs, not named locations: before the URI is parsed nginx cannot
 * redirect to a named location ("empty URI in redirect to named location") and answers an HTML 500.
 */
const EARLY_ERROR_PREFIX = '/_slm_copilot_error/';

function errorPageLines(overrides: Record<number, string> = {}): string[] {
  const pages: Array<[number, string]> = [
    [400, `${EARLY_ERROR_PREFIX}400`],
    [401, '@slm_copilot_401'],
    [403, '@slm_copilot_403'],
    [404, '@slm_copilot_404'],
    [405, '@slm_copilot_405'],
    [408, `${EARLY_ERROR_PREFIX}408`],
    [413, '@slm_copilot_413'],
    [414, `${EARLY_ERROR_PREFIX}414`],
    [429, '@slm_copilot_429'],
    [494, `${EARLY_ERROR_PREFIX}431`],
    [497, '@slm_copilot_497'],
    [500, '@slm_copilot_500'],
    [502, '@slm_copilot_502'],
    [503, '@slm_copilot_503'],
    [504, '@slm_copilot_504'],
  ];
  return pages.map(([code, target]) => `error_page ${code} = ${overrides[code] ?? target};`);
}

function renderSite(c: Ctx): string {
  const { config, files } = c;
  const engine = assertSafe(c.config.engine, 'engine');
  const up = `${assertSafe(c.paths.engine.host, 'engine host')}:${assertInt(c.paths.engine.port, 'engine port', 1, 65535)}`;
  const redirectPort = c.httpsPort === 443 ? '' : `:${c.httpsPort}`;
  const limits: string[] = [];
  if (c.rate > 0)
    limits.push(`        limit_req zone=slm_copilot_req${c.burst > 0 ? ` burst=${c.burst} nodelay` : ''};`);
  if (c.conn > 0) limits.push(`        limit_conn slm_copilot_conn ${c.conn};`);
  const limitLines = limits.length ? limits : ['        # rate and connection limits are off (0)'];
  const probe =
    config.engine === 'llama-server'
      ? [
          '        # llama-server: /health answers 200 only once the model is loaded (503 while loading).',
          `        proxy_pass http://slm_copilot_engine/health;`,
        ]
      : [
          '        # LocalAI: /readyz only means "HTTP is up"; /backend/monitor answers 200 only while the',
          "        # model's backend is loaded (query parameter in 4.x, JSON body in 3.x).",
          `        proxy_pass http://slm_copilot_engine/backend/monitor?model=${assertSafe(config.modelId, 'model id')};`,
          `        proxy_set_body ${json({ model: config.modelId })};`,
          '        proxy_set_header Content-Type application/json;',
        ];
  const metrics = config.metrics
    ? [
        '    # Prometheus metrics of the engine (ONEAPP_COPILOT_METRICS=YES), key required.',
        '    location = /metrics {',
        ...limitLines,
        '        auth_request /_slm_copilot_auth;',
        `        include ${q(files.proxy, 'proxy snippet path')};`,
        '        proxy_pass http://slm_copilot_engine;',
        '    }',
      ]
    : [
        '    # Metrics are off (ONEAPP_COPILOT_METRICS=NO): 404 JSON, after the key check like every path.',
        '    location = /metrics {',
        ...limitLines,
        '        auth_request /_slm_copilot_auth;',
        ...errorPageLines({ 404: '@slm_copilot_metrics_disabled' }).map((l) => `        ${l}`),
        '        root /nonexistent;',
        '        try_files /slm-copilot-metrics-disabled =404;',
        '    }',
      ];

  const corsOrigins = config.corsOrigins;
  const corsMap: string[] = [];
  if (corsOrigins.includes('*')) {
    corsMap.push('    "" "";', '    default "*";');
  } else {
    corsMap.push('    default "";');
    for (const o of corsOrigins) corsMap.push(`    ${q(o, 'CORS origin')} $http_origin;`);
  }

  return `# SLM-Copilot gateway: TLS, API keys, unbuffered streaming, CORS and limits in front of the engine.
# Generated by @slm-copilot/nginx-config from the ONEAPP_COPILOT_* context; do not edit (rewritten on every boot).
# Engine: ${engine} on ${up}; model id: ${assertSafe(config.modelId, 'model id')}.
# Included from nginx.conf's http {} block (conf.d); the snippets live in ${assertSafe(path.dirname(files.keys), 'snippets dir')}.

# --- Authentication ------------------------------------------------------------------------
# api-keys.conf (0600) maps the Authorization and x-api-key headers to the key's *name*
# ($slm_authorization_key, $slm_x_api_key); only names are ever logged.
include ${q(files.keys, 'key file path')};

# A valid key in either header is enough; "" = no valid key.
map "$slm_authorization_key:$slm_x_api_key" $slm_key {
    default "";
    "~^([a-z0-9-]+):" $1;
    "~^:([a-z0-9-]+)$" $1;
}

map "$http_authorization$http_x_api_key" $slm_401_body {
    "" ${openAiError('Missing API key: send the header Authorization: Bearer YOUR_KEY (or x-api-key: YOUR_KEY).', 'invalid_request_error', 'invalid_api_key')};
    default ${openAiError('Invalid API key.', 'authentication_error', 'invalid_api_key')};
}

# Keys never travel in URLs (they would end up in logs and browser histories): refused with 400.
map $args $slm_key_in_query {
    default 0;
    "~*(^|&)(api[-_]?key|x[-_]api[-_]key|key|access[-_]?token|token|auth|authorization|bearer|password)=" 1;
}

# --- Limits: per API key name, or per client address before authentication ------------------
map $slm_key $slm_limit_key {
    "" "ip:$remote_addr";
    default "key:$slm_key";
}
${c.rate > 0 ? `limit_req_zone $slm_limit_key zone=slm_copilot_req:10m rate=${c.rate}r/m;` : '# limit_req: off (ONEAPP_COPILOT_RATE_LIMIT=0)'}
${c.conn > 0 ? 'limit_conn_zone $slm_limit_key zone=slm_copilot_conn:10m;' : '# limit_conn: off (ONEAPP_COPILOT_CONNECTION_LIMIT=0)'}

map $limit_conn_status $slm_429_body {
    "REJECTED" ${openAiError(`Too many concurrent requests for this API key (limit: ${c.conn}).`, 'rate_limit_error', 'rate_limit_exceeded')};
    default ${openAiError(`Rate limit reached for this API key: ${c.rate} requests per minute.`, 'rate_limit_error', 'rate_limit_exceeded')};
}

# --- CORS: nginx answers preflights itself; only configured origins are echoed ---------------
map $http_origin $slm_cors_origin {
${corsMap.join('\n')}
}
map "$request_method:$slm_cors_origin" $slm_cors_methods {
    default "";
    "~^OPTIONS:." "${CORS_ALLOWED_METHODS}";
}
map "$request_method:$slm_cors_origin" $slm_cors_headers {
    default "";
    "~^OPTIONS:." "${CORS_ALLOWED_HEADERS.join(', ')}";
}
map "$request_method:$slm_cors_origin" $slm_cors_max_age {
    default "";
    "~^OPTIONS:." "${CORS_MAX_AGE_SECONDS}";
}

# --- Access log without secrets: no Authorization, no query string, the key's name only --------
log_format slm_copilot escape=json '{"time":"$time_iso8601","client":"$remote_addr","key":"$slm_key","method":"$request_method","path":"$uri","protocol":"$server_protocol","status":$status,"bytes":$body_bytes_sent,"request_time":$request_time,"upstream_status":"$upstream_status","upstream_time":"$upstream_response_time","user_agent":"$http_user_agent"}';

upstream slm_copilot_engine {
    server ${up};
    keepalive 8;
    # below llama-server's 5 s idle timeout, so nginx never reuses a connection the engine is closing
    keepalive_timeout 4s;
}

# --- Port ${c.httpPort}: ACME http-01 challenges, everything else redirected to HTTPS ----------------
server {
${listenLines(c.listen, c.httpPort, '').join('\n')}
    server_name _;
    server_tokens off;
    access_log ${q(path.join(c.logDir, 'slm-copilot.access.log'), 'log path')} slm_copilot;
    error_log ${q(path.join(c.logDir, 'slm-copilot.error.log'), 'log path')} warn;

    location ^~ /.well-known/acme-challenge/ {
        root ${q(c.paths.nginx.acmeWebroot, 'ACME webroot')};
        default_type text/plain;
        try_files $uri =404;
    }
    location / {
        return 301 https://$host${redirectPort}$request_uri;
    }
}

# --- Port ${c.httpsPort}: the API ---------------------------------------------------------------------
server {
${listenLines(c.listen, c.httpsPort, ' ssl http2').join('\n')}
    server_name _;
    server_tokens off;

    ssl_certificate ${q(c.tls.certificate, 'certificate path')};
    ssl_certificate_key ${q(c.tls.key, 'certificate key path')};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ${TLS_CIPHERS};
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve X25519:prime256v1:secp384r1;
    ssl_session_cache shared:slm_copilot_tls:10m;
    ssl_session_timeout 1d;
    ssl_session_tickets off;

    access_log ${q(path.join(c.logDir, 'slm-copilot.access.log'), 'log path')} slm_copilot;
    error_log ${q(path.join(c.logDir, 'slm-copilot.error.log'), 'log path')} warn;

    # Every response nginx makes itself is JSON (proxied responses keep the engine's type).
    types { }
    default_type application/json;
    charset off;
    gzip off;
    client_max_body_size ${c.config.maxBodyMegabytes}m;
    client_body_buffer_size 1m;
    limit_req_status 429;
    limit_conn_status 429;
    limit_req_log_level warn;
    limit_conn_log_level warn;

    include ${q(files.headers, 'headers snippet path')};
    include ${q(files.errors, 'errors snippet path')};

    # CORS preflight: answered here with 204, never proxied, no key needed.
    if ($request_method = OPTIONS) {
        return 204;
    }
    if ($slm_key_in_query) {
        return 400 ${openAiError('API keys are not accepted in the URL: send the header Authorization: Bearer YOUR_KEY.', 'invalid_request_error', 'api_key_in_url')};
    }

    # Readiness without a key: 200 only when the engine has the model loaded, else 503 JSON.
    location = /readyz {
        auth_request /_slm_copilot_probe;
        error_page 401 403 404 500 502 503 504 = @slm_copilot_not_ready;
        include ${q(files.headers, 'headers snippet path')};
        add_header Cache-Control "no-store" always;
        etag off;
        if_modified_since off;
        alias ${q(files.ready, 'ready body path')};
    }
    location = /_slm_copilot_probe {
        internal;
${probe.join('\n')}
        proxy_method GET;
        proxy_pass_request_headers off;
        proxy_pass_request_body off;
        proxy_connect_timeout 2s;
        proxy_send_timeout 5s;
        proxy_read_timeout 5s;
        proxy_intercept_errors on;
        error_page 300 301 302 303 307 308 400 401 403 404 405 408 429 500 501 502 503 504 = @slm_copilot_probe_failed;
    }
    location @slm_copilot_probe_failed {
        # (auth_request only reads the status; the body is for a client that requests the internal URI itself)
        return 403 ${openAiError('Forbidden.', 'invalid_request_error', null)};
    }

    # Key check (access phase, after the limits): 204 with a valid key, else 401.
    location = /_slm_copilot_auth {
        internal;
        if ($slm_key = "") {
            return 401;
        }
        return 204;
    }

${metrics.join('\n')}

    # Everything else goes to the engine, with a valid key.
    location / {
${limitLines.join('\n')}
        auth_request /_slm_copilot_auth;
        include ${q(files.proxy, 'proxy snippet path')};
        proxy_pass http://slm_copilot_engine;
    }
}
`;
}

function renderKeys(config: Config, keys: ResolvedKeys): string {
  const named = namedKeys(keys);
  const authz: string[] = [];
  const xkey: string[] = [];
  for (const { name, key } of named) {
    assertSafe(key, `API key "${name}"`);
    authz.push(`    "~^(?i:bearer)\\s+${regexLiteral(key)}\\s*$" ${name};`);
    xkey.push(`    "~^${regexLiteral(key)}$" ${name};`);
  }
  if (config.basicAuth) {
    authz.push('    # HTTP Basic: any user name, the password is an API key (decoded credentials end with ":<key>").');
    for (const { name, key } of named) {
      for (const p of basicCredentialPatterns(key)) authz.push(`    "~^(?i:basic)\\s+${p}\\s*$" ${name};`);
    }
  }
  return `# SLM-Copilot API keys (secret; generated by @slm-copilot/nginx-config, do not edit).
# Case-sensitive regular expressions: nginx's exact map strings ignore case, keys must not.
map $http_authorization $slm_authorization_key {
    default "";
${authz.join('\n')}
}
map $http_x_api_key $slm_x_api_key {
    default "";
${xkey.join('\n')}
}
`;
}

function renderHeaders(config: Config): string {
  const specific = config.corsOrigins.length > 0 && !config.corsOrigins.includes('*');
  return `# Headers on every response of the API server (nginx's own and proxied), errors included.
# (add_header is not inherited by a block that has its own, so each such block includes this file.)
add_header Strict-Transport-Security "max-age=31536000" always;
add_header X-Content-Type-Options "nosniff" always;
add_header X-Frame-Options "DENY" always;
add_header Referrer-Policy "no-referrer" always;
add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always;
add_header Access-Control-Allow-Origin $slm_cors_origin always;
add_header Access-Control-Allow-Methods $slm_cors_methods always;
add_header Access-Control-Allow-Headers $slm_cors_headers always;
add_header Access-Control-Max-Age $slm_cors_max_age always;
${specific ? 'add_header Vary "Origin" always;\n' : ''}`;
}

function renderProxy(c: Ctx): string {
  return `# Proxy settings for the engine: unbuffered streaming (server-sent events), long timeouts.
proxy_http_version 1.1;
proxy_set_header Connection "";
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-For $remote_addr;
proxy_set_header X-Forwarded-Proto https;
# The engine never sees the client's credentials.
proxy_set_header Authorization "";
proxy_set_header X-Api-Key "";
proxy_set_header Cookie "";

proxy_buffering off;
proxy_cache off;
proxy_connect_timeout 5s;
proxy_read_timeout ${c.timeout}s;
proxy_send_timeout ${c.timeout}s;
# A request written to a kept-alive connection that the engine closed at that very moment fails
# before any response byte ("upstream prematurely closed connection"): retry it once on a fresh
# connection. Completions have no side effects, and nothing is retried once a response has begun,
# so a stream cut mid-way still reaches the client as an error.
proxy_next_upstream error non_idempotent;
proxy_next_upstream_tries 2;

# The engine's own CORS headers are replaced by ours.
proxy_hide_header Access-Control-Allow-Origin;
proxy_hide_header Access-Control-Allow-Credentials;
proxy_hide_header Access-Control-Allow-Methods;
proxy_hide_header Access-Control-Allow-Headers;
proxy_hide_header Access-Control-Expose-Headers;
proxy_hide_header Access-Control-Max-Age;
proxy_hide_header X-Powered-By;

include ${q(c.files.headers, 'headers snippet path')};
# Tells any further proxy not to buffer the stream either.
add_header X-Accel-Buffering "no" always;
`;
}

function renderErrors(c: Ctx): string {
  const early = new Set(['400', '408', '414', '431']);
  const loc = (name: string, status: number, body: string, extra: string[] = []) =>
    [
      ...(early.has(name)
        ? [`location = ${EARLY_ERROR_PREFIX}${name} {`, '    internal;']
        : [`location @slm_copilot_${name} {`]),
      `    include ${q(c.files.headers, 'headers snippet path')};`,
      '    add_header Cache-Control "no-store" always;',
      ...extra.map((e) => `    ${e}`),
      `    return ${status} ${body};`,
      '}',
    ].join('\n');
  const retryAfter = c.rate > 0 ? Math.max(1, Math.ceil(60 / c.rate)) : 1;
  const bad = (m: string, code: string | null) => openAiError(m, 'invalid_request_error', code);
  return `# JSON errors in the OpenAI shape for every status nginx itself produces (never nginx's HTML).
${errorPageLines().join('\n')}

${[
  loc('400', 400, bad('Bad request.', null)),
  loc('401', 401, '$slm_401_body', [`add_header WWW-Authenticate 'Bearer realm="${REALM}"' always;`]),
  loc('403', 403, bad('Forbidden.', null)),
  loc('404', 404, bad('Not found.', 'not_found')),
  loc('metrics_disabled', 404, bad('Metrics are disabled on this appliance (ONEAPP_COPILOT_METRICS=NO).', 'not_found')),
  loc('405', 405, bad('Method not allowed.', null)),
  loc('408', 408, bad('Request timeout: the request was not received in time.', null)),
  loc(
    '413',
    413,
    bad(
      `Request body too large: the limit is ${c.config.maxBodyMegabytes} MiB (ONEAPP_COPILOT_MAX_BODY_SIZE).`,
      'request_too_large',
    ),
  ),
  loc('414', 414, bad('Request URI too long.', null)),
  loc('429', 429, '$slm_429_body', [`add_header Retry-After "${retryAfter}" always;`]),
  loc('431', 431, bad('Request headers too large.', null)),
  loc('497', 400, bad('This port speaks HTTPS only: use an https:// URL.', null)),
  loc('500', 500, openAiError('Internal error in the gateway.', 'server_error', null)),
  loc(
    '502',
    502,
    openAiError(
      'The inference engine is not reachable (starting, restarting or stopped); retry in a moment.',
      'server_error',
      'engine_unavailable',
    ),
  ),
  loc(
    '503',
    503,
    openAiError('The service is temporarily unavailable; retry in a moment.', 'server_error', 'service_unavailable'),
  ),
  loc(
    '504',
    504,
    openAiError(
      `The inference engine did not answer within ${c.timeout} s (ONEAPP_COPILOT_REQUEST_TIMEOUT).`,
      'server_error',
      'engine_timeout',
    ),
  ),
  loc(
    'not_ready',
    503,
    `'${JSON.stringify({ status: 'not_ready', error: { message: 'The model is not loaded yet (the engine is starting, loading the model, or stopped).', type: 'server_error', param: null, code: 'model_not_ready' } })}'`,
  ),
].join('\n')}
`;
}

/** Options of {@link renderUnconfigured}: where to listen and which certificate to serve. */
export type UnconfiguredRenderOptions = Pick<
  GatewayRenderOptions,
  'paths' | 'tls' | 'httpPort' | 'listenAddresses' | 'logDir'
> & { httpsPort: number };

/**
 * The site for a first boot without any good configuration: every path on both ports answers 503
 * JSON naming the problem, nothing is proxied, no key is involved. Replaces only the site file.
 * The problem text is reduced to a safe alphabet (it may quote what the operator typed).
 */
export function renderUnconfigured(problem: string, options: UnconfiguredRenderOptions): FileSet {
  const httpsPort = assertInt(options.httpsPort, 'HTTPS port', 1, 65535);
  const httpPort = assertInt(options.httpPort ?? 80, 'HTTP port', 1, 65535);
  const listen = [...(options.listenAddresses ?? ['*', '[::]'])];
  const logDir = options.logDir ?? path.join(options.paths.prefix || '/', 'var/log/nginx');
  const safe =
    problem
      .replace(/\s+/g, ' ')
      .replace(/[^A-Za-z0-9 _.,:=()\/@+*#%-]/g, '?')
      .trim()
      .slice(0, 400) || 'unknown problem';
  const body = openAiError(
    `SLM-Copilot is not configured: ${safe}. Fix the VM context and reboot (or run configure again).`,
    'server_error',
    'appliance_not_configured',
  );
  const site = `# SLM-Copilot gateway, UNCONFIGURED: the context was refused on a first boot; nothing is proxied.
# Generated by @slm-copilot/nginx-config; replaced by the real site once a configuration is accepted.
server {
${listenLines(listen, httpPort, '').join('\n')}
    server_name _;
    server_tokens off;
    access_log ${q(path.join(logDir, 'slm-copilot.access.log'), 'log path')};
    error_log ${q(path.join(logDir, 'slm-copilot.error.log'), 'log path')} warn;
    types { }
    default_type application/json;
    location / {
        add_header Cache-Control "no-store" always;
        return 503 ${body};
    }
}
server {
${listenLines(listen, httpsPort, ' ssl http2').join('\n')}
    server_name _;
    server_tokens off;
    ssl_certificate ${q(options.tls.certificate, 'certificate path')};
    ssl_certificate_key ${q(options.tls.key, 'certificate key path')};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ${TLS_CIPHERS};
    ssl_prefer_server_ciphers on;
    access_log ${q(path.join(logDir, 'slm-copilot.access.log'), 'log path')};
    error_log ${q(path.join(logDir, 'slm-copilot.error.log'), 'log path')} warn;
    types { }
    default_type application/json;
    location / {
        add_header Cache-Control "no-store" always;
        add_header Strict-Transport-Security "max-age=31536000" always;
        add_header X-Content-Type-Options "nosniff" always;
        return 503 ${body};
    }
}
`;
  return [{ path: options.paths.nginx.siteFile, text: site, mode: 0o644 }];
}

/**
 * Renders the gateway: the nginx site (conf.d, include-able from a stock nginx.conf) and its
 * snippets. Pure: the same Config and options give the same bytes; nothing is read from disk or env.
 */
export function renderGateway(config: Config, options: GatewayRenderOptions): FileSet {
  const { paths } = options;
  const httpsPort = assertInt(config.httpsPort, 'HTTPS port', 1, 65535);
  const httpPort = assertInt(options.httpPort ?? 80, 'HTTP port', 1, 65535);
  if (httpPort === httpsPort) throw new TaskError(`refusing to render: the HTTP and HTTPS ports are both ${httpPort}`);
  if (paths.engine.port === httpPort || paths.engine.port === httpsPort) {
    throw new TaskError(`refusing to render: port ${paths.engine.port} is the engine's`);
  }
  const rate = assertInt(config.rateLimitPerMinute, 'rate limit', 0, 100_000);
  const burst = assertInt(options.rateLimitBurst ?? Math.floor(rate / 10), 'rate limit burst', 0, 100_000);
  const files = gatewayFiles(paths);
  const ctx: Ctx = {
    config,
    files,
    httpPort,
    httpsPort,
    listen: [...(options.listenAddresses ?? ['*', '[::]'])],
    logDir: options.logDir ?? path.join(paths.prefix || '/', 'var/log/nginx'),
    rate,
    burst,
    conn: assertInt(config.connectionLimit, 'connection limit', 0, 10_000),
    timeout: assertInt(config.requestTimeoutSeconds, 'request timeout', 1, 86_400),
    paths,
    tls: options.tls,
  };
  assertInt(config.maxBodyMegabytes, 'body size limit', 1, 1024);
  if (ctx.listen.length === 0) throw new TaskError('refusing to render: no listen address');
  for (const o of config.corsOrigins) assertSafe(o, 'CORS origin');
  const keyOwner = options.keyFileOwner === undefined ? 'root:root' : options.keyFileOwner;
  const out: FileSpec[] = [
    { path: files.site, text: renderSite(ctx), mode: 0o644 },
    { path: files.keys, text: renderKeys(config, options.keys), mode: 0o600, ...(keyOwner ? { owner: keyOwner } : {}) },
    { path: files.headers, text: renderHeaders(config), mode: 0o644 },
    { path: files.proxy, text: renderProxy(ctx), mode: 0o644 },
    { path: files.errors, text: renderErrors(ctx), mode: 0o644 },
    {
      path: files.ready,
      text: `${JSON.stringify({ status: 'ready', model: assertSafe(config.modelId, 'model id') })}\n`,
      mode: 0o644,
    },
  ];
  return out;
}
