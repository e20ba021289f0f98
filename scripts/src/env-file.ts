/**
 * The `.env` writer: the build settings (./build-vars.ts) as a dotenv file, each variable with its
 * comment, in a stable order; values quoted so that dotenv reads them back exactly.
 */
import { TaskError } from '@slm-copilot/task-kit';
import { buildVars, settingText, type BuildSettings } from './build-vars.js';
import { wrapWords } from './wrap.js';

/** A dotenv value: bare when safe, else single-quoted (dotenv reads it literally). */
export function quoteEnvValue(value: string): string {
  if (/^[A-Za-z0-9_./:@%+~,=-]*$/.test(value)) return value;
  if (/[\r\n]/.test(value)) {
    // dotenv expands \n and \r only inside double quotes
    if (!value.includes('"') && !value.includes('\\')) return `"${value.replace(/\n/g, '\\n').replace(/\r/g, '\\r')}"`;
    throw new TaskError(`internal: ${JSON.stringify(value)} cannot be written as a .env value`);
  }
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"') && !value.includes('\\n') && !value.includes('\\r')) return `"${value}"`;
  throw new TaskError(`internal: ${JSON.stringify(value)} cannot be written as a .env value (it has both quote kinds)`);
}

/** `# …` lines of at most `width` characters. */
const commentLines = (text: string, width = 100): string[] => wrapWords(text, width - 2).map((l) => `# ${l}`);

/**
 * The `.env` text: a header, then every variable of the contract in a stable order, each with its
 * comment; variables of an earlier file that are not part of the contract are kept at the end.
 */
export function renderEnvFile(settings: BuildSettings, options: { extra?: Record<string, string> } = {}): string {
  const out = [
    '# SLM-Copilot image build settings (the contract: scripts/src/build-vars.ts).',
    '# Written by `pnpm run setup`; read by `pnpm turbo build:image` (or `npm run build:image`).',
    '# Command-line flags and real environment variables of the same name win over this file.',
    "# Relative paths are relative to this file's directory; ~ is the home directory.",
  ];
  for (const spec of buildVars()) {
    const raw = settingText(settings[spec.key]);
    if (raw !== '' && !spec.parse(raw).ok) {
      throw new TaskError(`internal: refusing to write ${spec.name}=${JSON.stringify(raw)}: expected ${spec.expected}`);
    }
    out.push(
      '',
      ...commentLines(`${spec.description} Default: ${settingText(spec.default) || '(empty)'}.`),
      `${spec.name}=${quoteEnvValue(raw)}`,
    );
  }
  const extra = Object.entries(options.extra ?? {});
  if (extra.length > 0) {
    out.push('', '# Other variables kept from the previous file (not part of the build settings):');
    for (const [k, v] of extra) out.push(`${k}=${quoteEnvValue(v)}`);
  }
  return `${out.join('\n')}\n`;
}
