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

/** `sk-…wxyz`-style masking: enough to recognise a key, never enough to use it. */
export function maskSecret(value: string): string {
  if (value.length === 0) return '(empty)';
  if (value.length < 12) return '*'.repeat(value.length);
  return `${value.slice(0, 3)}…${value.slice(-2)} (${value.length} chars)`;
}
