// nginx syntax helpers: every string a renderer interpolates goes through these checks, whatever the
// schema already did (defence in depth: a value must never end a directive or open a block).
import { TaskError } from '@slm-copilot/task-kit';

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

/** Inclusive integer bounds. */
export interface Bounds {
  min: number;
  max: number;
}

/** A TCP port (not a schema variable: the HTTP listener and the engine's port come from options and paths). */
export const TCP_PORT: Bounds = { min: 1, max: 65535 };

export function assertInt(value: number, what: string, { min, max }: Bounds): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new TaskError(`refusing to render ${what} = ${String(value)}: expected an integer from ${min} to ${max}`);
  }
  return value;
}

/** `"value"` after the safety check (nginx accepts every path and token quoted). */
export const quoted = (value: string, what: string): string => `"${assertSafe(value, what)}"`;

/** A JSON body as a single-quoted nginx string. */
export function nginxJson(value: unknown): string {
  const text = JSON.stringify(value);
  // Our own messages only; still make sure they cannot break out of the single-quoted nginx string.
  if (/['\\$\n\r]/.test(text)) throw new TaskError(`internal: JSON body ${text} is not safe in an nginx string`);
  return `'${text}'`;
}

/** An error body in the shape the OpenAI API (and so every OpenAI client) uses. */
export function openAiError(message: string, type: string, code: string | null): string {
  return nginxJson({ error: { message, type, param: null, code } });
}

/** `listen` lines of a default server: `*` means every IPv4 address (no address part). */
export function listenLines(addresses: readonly string[], port: number, extra: string): string[] {
  return addresses.map((a) => {
    const addr = a === '*' ? '' : `${assertSafe(a, 'listen address')}:`;
    return `    listen ${addr}${port}${extra} default_server;`;
  });
}

/** Indents directive lines by `levels` × 4 spaces (nginx files here use 4). */
export const indent = (lines: readonly string[], levels = 1): string[] =>
  lines.map((l) => (l ? `${' '.repeat(4 * levels)}${l}` : l));
