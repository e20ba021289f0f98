import { stringify } from 'yaml';
import type { ContextValues } from './context-values.generated.js';
import { parseContext } from './parse.js';
import { variables, type VariableSpec } from './schema.js';

/** A value as an operator writes it in a context (YES/NO, comma lists). */
export function contextText(value: VariableSpec['default']): string {
  if (typeof value === 'boolean') return value ? 'YES' : 'NO';
  if (Array.isArray(value)) return value.join(',');
  return String(value);
}

/** Default as an operator writes it in a context. */
export const contextDefault = (spec: VariableSpec): string => contextText(spec.default);

/** Defaults that replace the schema's in a rendered template (e.g. the context size an image was built for). */
export type VariableDefaults = Partial<ContextValues>;

/**
 * The variables with `defaults` in place of the schema's. Each given default is checked by the schema
 * first (a ContextError names a refused one): a template never offers a value the appliance refuses.
 */
export function withDefaults(defaults: VariableDefaults = {}): readonly VariableSpec[] {
  const given = Object.entries(defaults) as [string, VariableSpec['default']][];
  if (given.length === 0) return variables;
  parseContext(Object.fromEntries(given.map(([name, value]) => [name, contextText(value)])));
  const byName = new Map(given);
  return variables.map((v) => (byName.has(v.name) ? { ...v, default: byName.get(v.name)! } : v));
}

function allowed(spec: VariableSpec): string {
  if (spec.enum) return spec.enum.map((e) => `\`${e}\``).join(', ');
  return spec.expect;
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The README table of variables. */
export function renderDocsTable(): string {
  const rows = variables.map((v) => {
    const def = contextDefault(v);
    const shown = def === '' ? '(empty)' : `\`${cell(def)}\``;
    const stage = `${v.stage}${v.secret ? ', secret' : ''}`;
    return `| \`${v.name}\` | ${shown} | ${cell(allowed(v))} | ${stage} | ${cell(v.description)} |`;
  });
  return ['| Variable | Default | Allowed | Stage | Description |', '|---|---|---|---|---|', ...rows, ''].join('\n');
}

const shQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The one-apps `ONE_SERVICE_PARAMS` array (stride 4: name, stage, description, input hint). */
export function renderServiceParams(): string {
  const lines = variables.map(
    (v) => `    ${shQuote(v.name)} ${shQuote(v.stage)} ${shQuote(v.description)} ${shQuote(`O|${v.hint}`)}`,
  );
  return [
    '# Generated from packages/context-schema/schema/context.schema.json by `context-schema generate`. Do not edit.',
    'ONE_SERVICE_PARAMS=(',
    ...lines,
    ')',
    '',
  ].join('\n');
}

/** One-apps / marketplace user input: `O|type|description|options|default`. */
export function userInput(spec: VariableSpec): string {
  const options = spec.kind === 'string' && spec.enum ? spec.enum.join(',') : ' ';
  const description = spec.description.replace(/\|/g, '/');
  return `O|${spec.hint}|${description}|${options}|${contextDefault(spec)}`;
}

/**
 * The marketplace-community appliance YAML fragments: context, user_inputs, inputs_order; the user
 * inputs offer the schema's defaults, or `defaults` where given (checked by the schema).
 */
export function marketplaceInputs(defaults: VariableDefaults = {}): {
  context: Record<string, string>;
  user_inputs: Record<string, string>;
  inputs_order: string;
} {
  const specs = withDefaults(defaults);
  return {
    context: Object.fromEntries(specs.map((v) => [v.name.toLowerCase(), `$${v.name}`])),
    user_inputs: Object.fromEntries(specs.map((v) => [v.name.toLowerCase(), userInput(v)])),
    inputs_order: specs.map((v) => v.name).join(','),
  };
}

export function renderMarketplaceInputs(defaults: VariableDefaults = {}): string {
  const header =
    '# Generated from packages/context-schema/schema/context.schema.json by `context-schema generate`. Do not edit.';
  return `${header}\n${stringify(marketplaceInputs(defaults), { lineWidth: 0 })}`;
}
