/**
 * The bodies OneGate's PUT /vm takes, byte for byte as the official client sends them.
 * - OpenNebula/one-apps ae5a43e411bde941f46b1e8e314eccf5c7a327b2 context-linux/src/usr/bin/onegate.rb:
 *   `--data` sets options {data, type: 1}, `--erase` {data, type: 2}; `vm update` sends
 *   `URI.encode_www_form(options)` as the body of `PUT /vm` with Content-Type
 *   application/x-www-form-urlencoded. Several pairs travel as one `data` value, `K=V` lines joined by "\n"
 *   (its help: `--data KEY=VALUE\nKEY2=VALUE2`). Ruby's encode_www_form keeps `*-.0-9A-Z_a-z`, writes a
 *   space as `+` and the rest as uppercase %XX: the same bytes as WHATWG URLSearchParams.
 * - OpenNebula/one f847cf2e9a78da302cd0344505f93eadc43a6d28 src/onegate/onegate-server.rb (update,
 *   escape_attr, RESTRICTED_ATTRS): type 1 appends the lines to USER_TEMPLATE after escape_attr wraps
 *   each value in quotes, which a value holding `"`, `,`, `[`, `]`, `\` or a line break, or an empty
 *   value, would break; SERVICE_ID, ROLE_NAME and SCHED_REQUIREMENTS are refused (403).
 */

/** Attribute names: OpenNebula template attributes, upper case (the server upcases for its checks). */
const KEY = /^[A-Z][A-Z0-9_]*$/;
/** Values escape_attr quotes correctly: no quote, comma, bracket, backslash or line break; not empty. */
const VALUE = /^[^"\\,[\]\r\n]+$/;
/** The server's RESTRICTED_ATTRS (onegate-server.rb). */
export const RESTRICTED_ATTRS = ['SCHED_REQUIREMENTS', 'SERVICE_ID', 'ROLE_NAME'] as const;

/** Why OneGate would not store this pair as given, or null when it would. */
export function entryProblem(key: string, value: string): string | null {
  if (!KEY.test(key)) return `${JSON.stringify(key)} is not an attribute name (A-Z, 0-9, _)`;
  if ((RESTRICTED_ATTRS as readonly string[]).includes(key)) return `${key} is restricted by OneGate`;
  if (!VALUE.test(value)) {
    const what = 'an empty value or one with a quote, comma, bracket, backslash or line break';
    return `${key}: ${what} (OneGate would mangle it)`;
  }
  return null;
}

/** `data=K%3DV%0AK2%3DV2&type=1`: the body of `onegate vm update --data "K=V\nK2=V2"`. */
export function updateBody(data: Record<string, string>): string {
  const lines = Object.entries(data).map(([k, v]) => `${k}=${v}`);
  return new URLSearchParams([
    ['data', lines.join('\n')],
    ['type', '1'],
  ]).toString();
}

/** `data=KEY&type=2`: the body of `onegate vm update --erase KEY`. */
export function eraseBody(key: string): string {
  return new URLSearchParams([
    ['data', key],
    ['type', '2'],
  ]).toString();
}

/** `extended=true`: what `onegate service show --extended` sends (a form body on GET, as onegate.rb does). */
export const EXTENDED_BODY = new URLSearchParams([['extended', 'true']]).toString();
