import { stringify } from 'yaml';
import { variables, type VariableSpec } from './schema.js';

/** Default as an operator writes it in a context (YES/NO, comma lists). */
export function contextDefault(spec: VariableSpec): string {
  const d = spec.default;
  if (typeof d === 'boolean') return d ? 'YES' : 'NO';
  if (Array.isArray(d)) return d.join(',');
  return String(d);
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
    return `| \`${v.name}\` | ${def === '' ? '(empty)' : `\`${cell(def)}\``} | ${cell(allowed(v))} | ${v.stage}${v.secret ? ', secret' : ''} | ${cell(v.description)} |`;
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

/** The marketplace-community appliance YAML fragments: context, user_inputs, inputs_order. */
export function marketplaceInputs(): {
  context: Record<string, string>;
  user_inputs: Record<string, string>;
  inputs_order: string;
} {
  return {
    context: Object.fromEntries(variables.map((v) => [v.name.toLowerCase(), `$${v.name}`])),
    user_inputs: Object.fromEntries(variables.map((v) => [v.name.toLowerCase(), userInput(v)])),
    inputs_order: variables.map((v) => v.name).join(','),
  };
}

export function renderMarketplaceInputs(): string {
  return `# Generated from packages/context-schema/schema/context.schema.json by \`context-schema generate\`. Do not edit.\n${stringify(
    marketplaceInputs(),
    { lineWidth: 0 },
  )}`;
}
