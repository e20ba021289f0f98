// What the gateway renderers share: their options, the files they write, and the resolved inputs.
import path from 'node:path';
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import { underRoot } from '@slm-copilot/task-kit';
import type { ResolvedKeys } from './keys.js';
import type { Backend, TeamUpstreamOptions } from './team.js';

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
  /**
   * Where nginx writes our access and error logs (default `<prefix>/var/log/nginx`, rotated by
   * Debian's logrotate).
   */
  logDir?: string;
  /**
   * Owner of the key file; `null` leaves it to the writer (tests). Default `root:root` (only nginx's
   * master reads it).
   */
  keyFileOwner?: string | null;
  /** Requests allowed above the rate before 429 (default: a tenth of the per-minute rate, rounded down). */
  rateLimitBurst?: number;
  /** Role lb (required there): the inference nodes and the client certificate the lb shows them. */
  team?: TeamRenderOptions;
  /** Role inference (required there): the load balancers' client certificate fingerprints it accepts. */
  internal?: InternalRenderOptions;
}

export interface TeamRenderOptions {
  backends: readonly Backend[];
  /** The lb's client certificate and key (mutual TLS towards the inference nodes). */
  clientCertificate: ServedCertificate;
  /** Test mutations of the upstream (see renderTeamUpstream). */
  upstream?: TeamUpstreamOptions;
}

export interface InternalRenderOptions {
  /** SHA-1 fingerprints (lower-case hex) of the service's load balancers' client certificates. */
  lbFingerprints: readonly string[];
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

/** The service roles' own files, rewritten by the team refresher (beside the gateway's snippets). */
export function roleFiles(paths: AppliancePaths): { teamUpstream: string; lbClients: string; lbMain: string } {
  return {
    /** Role lb: the upstreams of inference nodes. */
    teamUpstream: path.join(paths.nginx.snippetsDir, 'team-upstream.conf'),
    /** Role inference: the accepted load-balancer certificates. */
    lbClients: path.join(paths.nginx.snippetsDir, 'lb-clients.conf'),
    /** Role lb: a main-context line (Debian's and Ubuntu's nginx.conf include modules-enabled/ there). */
    lbMain: path.join(paths.nginx.confDir, 'modules-enabled', '90-slm-copilot-lb.conf'),
  };
}

/** Where the gateway's logs go unless told otherwise. */
export const defaultLogDir = (paths: AppliancePaths): string => underRoot(paths.prefix || '/', '/var/log/nginx');

/** Default listen addresses: every IPv4 and every IPv6 address. */
export const DEFAULT_LISTEN: readonly string[] = ['*', '[::]'];

/** The checked inputs of one render (built by renderGateway; the site and snippet renderers read them). */
export interface RenderContext {
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
  /** Role lb only. */
  team?: TeamRenderOptions;
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
