import schemaJson from '../schema/context.schema.json' with { type: 'json' };

export type VariableKind = 'string' | 'integer' | 'boolean' | 'list';
export type Stage = 'install' | 'configure' | 'bootstrap';

/** One ONEAPP_* variable as the schema describes it. */
export interface VariableSpec {
  name: string;
  kind: VariableKind;
  default: string | number | boolean | string[];
  description: string;
  secret: boolean;
  stage: Stage;
  /** one-apps user-input type: text, text64, password, number, boolean, list. */
  hint: string;
  /** What the operator is told when a value is refused. */
  expect: string;
  enum?: readonly string[];
  minimum?: number;
  maximum?: number;
}

interface RawProperty {
  default: VariableSpec['default'];
  description: string;
  enum?: string[];
  minimum?: number;
  maximum?: number;
  'x-kind': VariableKind;
  'x-secret'?: boolean;
  'x-stage': Stage;
  'x-hint': string;
  'x-expect': string;
}

/** The JSON Schema itself: the single source of truth for the contract. */
export const contextSchema = schemaJson as unknown as Record<string, unknown> & {
  properties: Record<string, RawProperty>;
};

/** Every variable, in schema order (which is also the order users see them in). */
export const variables: readonly VariableSpec[] = Object.entries(contextSchema.properties).map(([name, p]) => ({
  name,
  kind: p['x-kind'],
  default: p.default,
  description: p.description,
  secret: p['x-secret'] ?? false,
  stage: p['x-stage'],
  hint: p['x-hint'],
  expect: p['x-expect'],
  ...(p.enum ? { enum: p.enum } : {}),
  ...(p.minimum !== undefined ? { minimum: p.minimum } : {}),
  ...(p.maximum !== undefined ? { maximum: p.maximum } : {}),
}));

export const variableByName: ReadonlyMap<string, VariableSpec> = new Map(variables.map((v) => [v.name, v]));

export const VARIABLE_PREFIX = 'ONEAPP_COPILOT_';
