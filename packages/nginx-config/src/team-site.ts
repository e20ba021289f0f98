// Role lb: what differs in the user-facing site (everything else — TLS, keys, limits, CORS, errors, the
// log — is the standalone gateway's, rendered by the same site.ts). The upstream is the set of inference
// nodes (team-upstream.conf, rewritten by the team refresher); requests go to them over mutual TLS.
//
// Why mutual TLS (and not a shared secret): the lb proves itself with a client certificate whose private
// key never leaves the lb VM; the inference nodes learn which certificate to accept from its SHA-1
// fingerprint, which the lb publishes through OneGate (ONEAPP_COPILOT_LB_CLIENT_FINGERPRINT). A fingerprint
// is public — whoever reads it (OpenNebula users who can see the service's VMs, and the VMs of the service
// through GET /service) gains nothing — so no secret is ever published, typed into a user input, or derived
// from the users' API keys, which an inference node never sees nor accepts.
//
// A node dying mid-stream: nginx (nginx/nginx src/http/ngx_http_upstream.c at 3f6f7824d4e2,
// ngx_http_upstream_process_non_buffered_request) logs "upstream prematurely closed connection" and
// finalizes with 502; the header is already sent, so ngx_http_upstream_finalize_request turns that into
// NGX_ERROR and closes the client's connection (HTTP/1.1: no final chunk; HTTP/2: a stream reset). The
// client's stream ends at once, without [DONE]; nginx cannot append an SSE error event to it (stock nginx
// has no filter for that). Nothing that has begun is retried (proxy_next_upstream only acts before it).
import { roleFiles, type RenderContext } from './gateway-files.js';
import { quoted } from './nginx-syntax.js';
import { errorPageLines } from './snippets.js';
import { TEAM_ANY_UPSTREAM, TEAM_UPSTREAM } from './team.js';

/** Where the lb site proxies API requests. */
export const upstreamTarget = (c: RenderContext): string =>
  c.team ? `https://${TEAM_ANY_UPSTREAM}` : 'http://slm_copilot_engine';

function team(c: RenderContext) {
  if (!c.team) throw new Error('internal: not the lb role');
  return c.team;
}

/** The upstream section: the refresher's file. */
export function lbUpstreamLines(c: RenderContext): string[] {
  return [
    '# The inference nodes (ready, not draining), from OneGate; rewritten by the team refresher.',
    `include ${quoted(roleFiles(c.paths).teamUpstream, 'team upstream path')};`,
  ];
}

/** Server-level: the client certificate shown to the inference nodes. */
export function lbApiSettings(c: RenderContext): string[] {
  const { clientCertificate } = team(c);
  return [
    '    # Mutual TLS towards the inference nodes: they accept this certificate only (never a user key).',
    `    proxy_ssl_certificate ${quoted(clientCertificate.certificate, 'lb client certificate path')};`,
    `    proxy_ssl_certificate_key ${quoted(clientCertificate.key, 'lb client key path')};`,
    '    proxy_ssl_protocols TLSv1.2 TLSv1.3;',
    '    proxy_ssl_session_reuse on;',
    "    # (the nodes' per-VM certificates are not verified: their addresses come from OneGate, like their CAs)",
    '    proxy_ssl_verify off;',
  ];
}

/** /readyz's probe: 200 while at least one node answers its own /readyz with 200. */
export function lbProbeLines(): string[] {
  return [
    '        # Ready while at least one inference node is: each is tried in turn until one answers 200.',
    `        proxy_pass https://${TEAM_ANY_UPSTREAM}/readyz;`,
    '        proxy_next_upstream error timeout http_502 http_503 http_504 http_404 http_403;',
    '        proxy_next_upstream_tries 0;',
  ];
}

/**
 * `location /` of the lb: the sticky upstream; when every node is at its slot count nginx itself
 * answers 502 (no live upstreams), caught here and sent to the least busy node, where it queues.
 */
export function lbMainLocation(c: RenderContext, limits: string[]): string[] {
  const proxy = `        include ${quoted(c.files.proxy, 'proxy snippet path')};`;
  return [
    "    # Everything else goes to an inference node, with a valid key: the key name's node first.",
    '    location / {',
    ...limits,
    '        auth_request /_slm_copilot_auth;',
    proxy,
    `        proxy_pass https://${TEAM_UPSTREAM};`,
    // (off here, the first redirect marks the request and nginx ignores the overflow's own error_page: a
    // request that finds no node at all got nginx's HTML 502 instead of the JSON one)
    '        recursive_error_pages on;',
    ...errorPageLines({ 502: '@slm_copilot_overflow' }).map((l) => `        ${l}`),
    '    }',
    '    location @slm_copilot_overflow {',
    '        # its own 502 (no node at all) goes to the JSON error page',
    '        recursive_error_pages on;',
    proxy,
    `        proxy_pass https://${TEAM_ANY_UPSTREAM};`,
    '    }',
  ];
}
