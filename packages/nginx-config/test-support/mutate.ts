// Deliberately broken renders for the mutation checks: each property test must fail against one.
import type { FileSet } from '@slm-copilot/task-kit';

/**
 * Replaces `from` by `to` in the file whose path ends with `suffix`; throws when nothing matched (a
 * stale mutation proves nothing).
 */
export function mutation(suffix: string, from: string | RegExp, to: string): (files: FileSet) => FileSet {
  return (files) => {
    let hit = false;
    const out = files.map((f) => {
      if (!f.path.endsWith(suffix)) return f;
      const text = f.text.replace(
        from instanceof RegExp
          ? new RegExp(from.source, from.flags.includes('g') ? from.flags : `${from.flags}g`)
          : from,
        () => {
          hit = true;
          return to;
        },
      );
      return { ...f, text };
    });
    if (!hit) throw new Error(`mutation did not apply: ${String(from)} not found in *${suffix}`);
    return out;
  };
}

export const MUTATIONS = {
  /** The key check removed from the proxied locations. */
  authRemoved: mutation('slm-copilot.conf', /^\s*auth_request \/_slm_copilot_auth;\n/m, ''),
  /** nginx buffers the engine's responses. */
  bufferingOn: mutation('proxy.conf', 'proxy_buffering off;', 'proxy_buffering on;'),
  /** Preflights are no longer answered by nginx. */
  preflightRemoved: mutation(
    'slm-copilot.conf',
    / {4}if \(\$request_method = OPTIONS\) \{\n {8}return 204;\n {4}\}\n/,
    '',
  ),
  /** No request rate limit. */
  rateLimitRemoved: mutation('slm-copilot.conf', /^\s*limit_req zone=slm_copilot_req[^\n]*\n/m, ''),
  /** No body size limit. */
  bodyLimitRaised: mutation('slm-copilot.conf', /client_max_body_size \d+m;/, 'client_max_body_size 0;'),
  /** Readiness that only checks nginx, not the engine. */
  readyzWithoutProbe: mutation('slm-copilot.conf', /^\s*auth_request \/_slm_copilot_probe;\n/m, ''),
  /** A log format that records the Authorization header and the query string. */
  keysLogged: mutation('slm-copilot.conf', '"path":"$uri"', '"path":"$request_uri","auth":"$http_authorization"'),
  /** No retry when the engine drops a kept-alive connection before answering. */
  noUpstreamRetry: mutation(
    'proxy.conf',
    /proxy_next_upstream error non_idempotent;\nproxy_next_upstream_tries 2;/,
    'proxy_next_upstream off;',
  ),
  /** Query-string keys no longer refused. */
  queryKeysAccepted: mutation('slm-copilot.conf', / {4}if \(\$slm_key_in_query\) \{\n[^\n]*\n {4}\}\n/, ''),
};
