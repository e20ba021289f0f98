// renderGateway: the checked inputs of one render, then the site and its snippets. Pure.
import { variableByName, type Config } from '@slm-copilot/context-schema';
import { TaskError, type FileSet } from '@slm-copilot/task-kit';
import {
  DEFAULT_LISTEN,
  defaultLogDir,
  gatewayFiles,
  type GatewayRenderOptions,
  type RenderContext,
} from './gateway-files.js';
import { assertInt, assertSafe, TCP_PORT, type Bounds } from './nginx-syntax.js';
import { renderSite } from './site.js';
import { renderErrors, renderHeaders, renderKeys, renderProxy } from './snippets.js';

export {
  CORS_ALLOWED_HEADERS,
  CORS_ALLOWED_METHODS,
  CORS_MAX_AGE_SECONDS,
  REALM,
  gatewayFiles,
  type GatewayFiles,
  type GatewayRenderOptions,
  type ServedCertificate,
} from './gateway-files.js';
export { TLS_CIPHERS, tlsDirectives } from './https-server.js';
export { CA_DOWNLOAD_PATH } from './site.js';
export { assertSafe, openAiError } from './nginx-syntax.js';
export { renderUnconfigured, type UnconfiguredRenderOptions } from './unconfigured.js';

/** The bounds the context schema gives a variable: the renderer refuses what the schema would. */
function schemaBounds(name: string): Bounds {
  const v = variableByName.get(name);
  if (v?.minimum === undefined || v.maximum === undefined) {
    throw new TaskError(`internal: the context schema gives no bounds for ${name}`);
  }
  return { min: v.minimum, max: v.maximum };
}

/** A Config number checked against its variable's schema bounds. */
const fromSchema = (value: number, what: string, name: string) =>
  assertInt(value, `${what} (${name})`, schemaBounds(name));

function renderContext(config: Config, options: GatewayRenderOptions): RenderContext {
  const { paths } = options;
  const httpsPort = fromSchema(config.httpsPort, 'HTTPS port', 'ONEAPP_COPILOT_HTTPS_PORT');
  const httpPort = assertInt(options.httpPort ?? 80, 'HTTP port', TCP_PORT);
  if (httpPort === httpsPort) throw new TaskError(`refusing to render: the HTTP and HTTPS ports are both ${httpPort}`);
  if (paths.engine.port === httpPort || paths.engine.port === httpsPort) {
    throw new TaskError(`refusing to render: port ${paths.engine.port} is the engine's`);
  }
  const rate = fromSchema(config.rateLimitPerMinute, 'rate limit', 'ONEAPP_COPILOT_RATE_LIMIT');
  // A burst above the largest per-minute rate the schema allows means nothing.
  const burstBounds = { min: 0, max: schemaBounds('ONEAPP_COPILOT_RATE_LIMIT').max };
  const burst = assertInt(options.rateLimitBurst ?? Math.floor(rate / 10), 'rate limit burst', burstBounds);
  fromSchema(config.maxBodyMegabytes, 'body size limit', 'ONEAPP_COPILOT_MAX_BODY_SIZE');
  const listen = [...(options.listenAddresses ?? DEFAULT_LISTEN)];
  if (listen.length === 0) throw new TaskError('refusing to render: no listen address');
  for (const o of config.corsOrigins) assertSafe(o, 'CORS origin');
  return {
    config,
    paths,
    tls: options.tls,
    files: gatewayFiles(paths),
    httpPort,
    httpsPort,
    listen,
    logDir: options.logDir ?? defaultLogDir(paths),
    rate,
    burst,
    conn: fromSchema(config.connectionLimit, 'connection limit', 'ONEAPP_COPILOT_CONNECTION_LIMIT'),
    timeout: fromSchema(config.requestTimeoutSeconds, 'request timeout', 'ONEAPP_COPILOT_REQUEST_TIMEOUT'),
  };
}

/**
 * Renders the gateway: the nginx site (conf.d, include-able from a stock nginx.conf) and its
 * snippets. Pure: the same Config and options give the same bytes; nothing is read from disk or env.
 */
export function renderGateway(config: Config, options: GatewayRenderOptions): FileSet {
  const c = renderContext(config, options);
  const { files } = c;
  const keyOwner = options.keyFileOwner === undefined ? 'root:root' : options.keyFileOwner;
  return [
    { path: files.site, text: renderSite(c), mode: 0o644 },
    { path: files.keys, text: renderKeys(config, options.keys), mode: 0o600, ...(keyOwner ? { owner: keyOwner } : {}) },
    { path: files.headers, text: renderHeaders(config), mode: 0o644 },
    { path: files.proxy, text: renderProxy(c), mode: 0o644 },
    { path: files.errors, text: renderErrors(c), mode: 0o644 },
    {
      path: files.ready,
      text: `${JSON.stringify({ status: 'ready', model: assertSafe(config.modelId, 'model id') })}\n`,
      mode: 0o644,
    },
  ];
}
