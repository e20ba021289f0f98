import { contextSchema } from './schema.js';

/** A schema property as far as its TypeScript type goes. */
interface TypedProperty {
  type: 'string' | 'integer' | 'number' | 'boolean' | 'array';
  enum?: readonly string[];
  items?: { type: 'string' };
  description: string;
}

/** The TypeScript type of one schema property (after coercion and validation). */
export function typeOf(name: string, p: TypedProperty): string {
  switch (p.type) {
    case 'string':
      return p.enum ? p.enum.map((e) => `'${e}'`).join(' | ') : 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array':
      if (p.items?.type === 'string') return 'string[]';
  }
  throw new Error(`${name}: the schema type ${JSON.stringify(p.type)} has no TypeScript mapping here`);
}

/** Words of `text` as comment lines no longer than `width`. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

export const CONTEXT_VALUES_FILE = 'packages/context-schema/src/context-values.generated.ts';

/** `ContextValues`: the validated context, keyed by variable name — the schema's types as TypeScript. */
export function renderContextValuesType(): string {
  const members = Object.entries(contextSchema.properties).flatMap(([name, raw]) => {
    const p = raw as unknown as TypedProperty;
    const doc = wrap(p.description.replace(/\*\//g, '*\\/'), 100);
    const comment = doc.length === 1 ? [`  /** ${doc[0]} */`] : ['  /**', ...doc.map((l) => `   * ${l}`), '   */'];
    return [...comment, `  ${name}: ${typeOf(name, p)};`];
  });
  return [
    '// Generated from packages/context-schema/schema/context.schema.json by `context-schema generate`. Do not edit.',
    '',
    '/** The validated context, keyed by variable name: the types the schema gives each variable. */',
    'export interface ContextValues {',
    ...members,
    '}',
    '',
    '/** Every ONEAPP_COPILOT_* variable the schema knows. */',
    'export type VariableName = keyof ContextValues;',
    '',
  ].join('\n');
}
