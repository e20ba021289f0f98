// THE HTTPS server block: every site the appliance renders (configured or not) serves TLS through
// this one function, so the TLS settings cannot drift between them.
import type { ServedCertificate } from './gateway-files.js';
import { indent, listenLines, quoted } from './nginx-syntax.js';

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

/** The TLS directives of every HTTPS server (unindented). */
export function tlsDirectives(tls: ServedCertificate): string[] {
  return [
    `ssl_certificate ${quoted(tls.certificate, 'certificate path')};`,
    `ssl_certificate_key ${quoted(tls.key, 'certificate key path')};`,
    'ssl_protocols TLSv1.2 TLSv1.3;',
    `ssl_ciphers ${TLS_CIPHERS};`,
    'ssl_prefer_server_ciphers on;',
    'ssl_ecdh_curve X25519:prime256v1:secp384r1;',
    // Tickets off: with a ticket key that never rotates, forward secrecy would end at the key.
    'ssl_session_cache shared:slm_copilot_tls:10m;',
    'ssl_session_timeout 1d;',
    'ssl_session_tickets off;',
  ];
}

export interface HttpsServerOptions {
  listen: readonly string[];
  port: number;
  tls: ServedCertificate;
  /** The server's own directives and locations, already indented one level. */
  body: readonly string[];
}

/** A `server { … }` block on `port` with TLS and HTTP/2, as the default server of its addresses. */
export function httpsServer(o: HttpsServerOptions): string {
  return [
    'server {',
    ...listenLines(o.listen, o.port, ' ssl http2'),
    '    server_name _;',
    '    server_tokens off;',
    '',
    ...indent(tlsDirectives(o.tls)),
    '',
    ...o.body,
    '}',
  ].join('\n');
}
