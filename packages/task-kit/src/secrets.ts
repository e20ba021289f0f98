import { randomBytes } from 'node:crypto';

/** Characters allowed in API keys (conventions: safe in HTTP headers and nginx maps). */
export const API_KEY_PATTERN = /^[A-Za-z0-9._~+/=-]{16,256}$/;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A new API key from the CSPRNG: `sk-` and `length` characters of [A-Za-z0-9].
 * Rejection sampling keeps every character equally likely.
 */
export function generateApiKey(length = 40): string {
  let out = 'sk-';
  while (out.length < length + 3) {
    for (const byte of randomBytes(64)) {
      if (byte < 248 && out.length < length + 3) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

/**
 * What a log line or an error shows in place of a secret: that it was set, nothing more — neither
 * its length nor any of its characters (a prefix or suffix narrows a guess, a length too).
 */
export function maskSecret(value: string): string {
  return value.length === 0 ? '(empty)' : '[hidden]';
}
