import { API_KEY_PATTERN, TaskError } from '@slm-copilot/task-kit';

/** The API keys nginx accepts: the main key (from the context or generated once) and the extra keys. */
export interface ResolvedKeys {
  main: string;
  extra: readonly string[];
}

/** A key with the name nginx logs instead of it (`main`, `extra-1`, …). */
export interface NamedKey {
  name: string;
  key: string;
}

/** Names every distinct key; a key given twice (main repeated among the extras) is kept once. */
export function namedKeys(keys: ResolvedKeys): NamedKey[] {
  const out: NamedKey[] = [];
  const seen = new Set<string>();
  const add = (name: string, key: string) => {
    if (!API_KEY_PATTERN.test(key)) {
      // Never print the key itself: only where it came from.
      throw new TaskError(
        `internal: API key "${name}" does not match ${API_KEY_PATTERN} (the schema should have refused it)`,
      );
    }
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ name, key });
  };
  add('main', keys.main);
  keys.extra.forEach((k, i) => add(`extra-${i + 1}`, k));
  return out;
}

/** Escapes the two key characters that mean something in a PCRE pattern (`.` and `+`). */
export function regexLiteral(text: string): string {
  return text.replace(/[.+*?()[\]{}|^$\\]/g, (c) => `\\${c}`);
}

const B64 = '[A-Za-z0-9+/]';

/**
 * Regular expressions (PCRE, also valid JavaScript) matching the base64 credentials of HTTP Basic
 * auth whose decoded form ends with `:<key>` — whatever the user name (any length, empty included).
 *
 * Base64 encodes 3 bytes as 4 characters, so where the key starts inside a 3-byte group depends on
 * the user name's length. For each of the 3 alignments, the characters that encode only the ':' and
 * the key are fixed, and the characters that mix the last user-name byte with the ':' are
 * restricted to the values a ':' allows. Alignment (length of "user:" mod 3):
 *   0: the group [x, y, ':'] ends before the key   → ..{2}[AEIMQUYcgkosw048]6 + b64(key)
 *   1: ':' starts a group                           → b64(':' + key)
 *   2: the group is [x, ':', k0]                    → .[DTjz] + b64(x ':' key) without its first 2 chars
 */
export function basicCredentialPatterns(key: string): string[] {
  const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
  const tail2 = b64(Buffer.concat([Buffer.from([0]), Buffer.from(`:${key}`)])).slice(2);
  return [
    `(?:${B64}{4})*${B64}{2}[AEIMQUYcgkosw048]6${regexLiteral(b64(key))}`,
    `(?:${B64}{4})*${regexLiteral(b64(`:${key}`))}`,
    `(?:${B64}{4})*${B64}[DTjz]${regexLiteral(tail2)}`,
  ];
}
