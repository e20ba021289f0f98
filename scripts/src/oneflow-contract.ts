/**
 * OneFlow's service-template rules, as facts read from OpenNebula's source and kept as data in
 * contract/oneflow-<version>.json (with file, lines and commit), and a validator over them: what
 * `oneflow-template create` and `instantiate` would refuse. Where OneFlow is lax (Ruby truthiness aside)
 * the validator is stricter, as the contract says; it never accepts what OneFlow refuses.
 */
import { readFileSync } from 'node:fs';
import { parsesAsElasticityExpression, type ExpressionGrammar } from './oneflow-expression.js';

export const ONEFLOW_CONTRACT_FILE = new URL('../contract/oneflow-7.4.0.json', import.meta.url);

/** A node of OneFlow's Ruby schema hashes (ServiceTemplate::SCHEMA and friends), transcribed. */
export interface SchemaNode {
  type: 'object' | 'array' | 'string' | 'integer' | 'boolean' | 'null';
  required?: boolean;
  default?: unknown;
  enum?: string[];
  regex?: string;
  minimum?: number;
  maximum?: number;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode | [];
}

interface Fact<T> {
  value: T;
  verified: boolean;
}

export interface OneflowContract {
  tag: string;
  commit: string;
  serviceSchema: Fact<SchemaNode>;
  vmRoleSchema: Fact<SchemaNode>;
  vrRoleSchema: Fact<SchemaNode>;
  roleTypes: Fact<{ field: string; defaultWhenAbsent: string; schemas: Record<string, string> }>;
  valueRules: Fact<{ id: string; text: string }[]>;
  elasticityExpression: Fact<ExpressionGrammar>;
  userInputs: Fact<{ types: string[] }>;
  readyStatusGate: Fact<{ attribute: string; where: string; readyValue: string }>;
  elasticityTiming: Fact<{ autoscalerIntervalSeconds: number; defaultCooldownSeconds: number }>;
}

export function loadOneflowContract(): OneflowContract {
  return JSON.parse(readFileSync(ONEFLOW_CONTRACT_FILE, 'utf8')) as OneflowContract;
}

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Ruby truthiness: OneFlow's validator treats nil and false as "not given" (validator.rb validate_object). */
const given = (v: Json) => v !== undefined && v !== null && v !== false;
const INTEGER_TEXT = /^[-+]?\d+$/;

function checkScalar(value: Json, schema: SchemaNode, where: string): string[] {
  switch (schema.type) {
    case 'string':
      if (typeof value !== 'string') return [`${where} must be a String`];
      if (schema.enum) return schema.enum.includes(value) ? [] : [`${where} must be one of ${schema.enum.join(', ')}`];
      if (schema.regex && !new RegExp(schema.regex).test(value)) return [`${where} must match ${schema.regex}`];
      return [];
    case 'integer': {
      const ok = Number.isInteger(value) || (typeof value === 'string' && INTEGER_TEXT.test(value));
      if (!ok) return [`${where} must be an Integer`];
      const n = Number(value);
      if (schema.minimum !== undefined && n < schema.minimum) return [`${where} must be >= ${schema.minimum}`];
      if (schema.maximum !== undefined && n > schema.maximum) return [`${where} must be <= ${schema.maximum}`];
      return [];
    }
    case 'boolean':
      return value === true || value === false ? [] : [`${where} must be true or false`];
    case 'null':
      return value === null || value === undefined ? [] : [`${where} must be null`];
    default:
      return [`${where}: unsupported schema type ${String(schema.type)}`];
  }
}

/** Every problem OneFlow's validator (validator.rb) would raise for `value` against `schema`. */
export function schemaProblems(value: Json, schema: SchemaNode, where: string): string[] {
  if (schema.type === 'object') {
    if (!isObject(value)) return [`${where} must be an Object`];
    return Object.entries(schema.properties ?? {}).flatMap(([key, child]) => {
      if (given(value[key])) return schemaProblems(value[key], child, where ? `${where}.${key}` : key);
      return child.required ? [`${where ? `${where}.` : ''}${key} (${child.type}) is missing`] : [];
    });
  }
  if (schema.type === 'array') {
    if (!Array.isArray(value)) return [`${where} must be an Array`];
    const items = schema.items;
    if (!items || Array.isArray(items)) return [];
    return value.flatMap((item, i) => schemaProblems(item, items, `${where}[${i}]`));
  }
  return checkScalar(value, schema, where);
}

type Role = Record<string, Json>;

function roleSchemaProblems(contract: OneflowContract, role: Role, where: string): string[] {
  const types = contract.roleTypes.value;
  const type = role[types.field] ?? types.defaultWhenAbsent;
  const schemaName = typeof type === 'string' ? types.schemas[type] : undefined;
  if (!schemaName) return [`${where}: unsupported role type ${JSON.stringify(type)}`];
  const fact = contract[schemaName as 'vmRoleSchema' | 'vrRoleSchema'];
  return schemaProblems(role, fact.value, where);
}

/** validate_vmvalues (service_template.rb 666-757): bounds, policies and expressions of one vm role. */
function vmValueProblems(contract: OneflowContract, role: Role, where: string): string[] {
  const problems: string[] = [];
  const cardinality = Number(role.cardinality ?? 0);
  if (role.min_vms != null && Number(role.min_vms) > cardinality)
    problems.push(`${where}: cardinality ${cardinality} is below min_vms ${String(role.min_vms)}`);
  if (role.max_vms != null && Number(role.max_vms) < cardinality)
    problems.push(`${where}: cardinality ${cardinality} is above max_vms ${String(role.max_vms)}`);
  const elastic = Array.isArray(role.elasticity_policies) ? role.elasticity_policies : [];
  const scheduled = Array.isArray(role.scheduled_policies) ? role.scheduled_policies : [];
  if (elastic.length + scheduled.length > 0 && (role.min_vms == null || role.max_vms == null))
    problems.push(`${where}: a role with elasticity or scheduled policies must define both min_vms and max_vms`);
  elastic.forEach((policy, i) => {
    const expression = isObject(policy) ? policy.expression : undefined;
    if (typeof expression !== 'string') return; // the schema already named it
    if (expression === '') problems.push(`${where}.elasticity_policies[${i}].expression is empty`);
    else if (!parsesAsElasticityExpression(contract.elasticityExpression.value, expression))
      problems.push(`${where}.elasticity_policies[${i}].expression does not parse: ${JSON.stringify(expression)}`);
  });
  scheduled.forEach((policy, i) => {
    const p = isObject(policy) ? policy : {};
    if ((p.start_time == null) === (p.recurrence == null))
      problems.push(`${where}.scheduled_policies[${i}] must define start_time or recurrence, not both`);
  });
  return problems;
}

/** User inputs as OneFlow's CLI reads them (one_helper.rb parse_user_inputs): 5 parts, a known type. */
function userInputProblems(contract: OneflowContract, inputs: Json, where: string): string[] {
  if (!isObject(inputs)) return [];
  return Object.entries(inputs).flatMap(([key, text]) => {
    if (typeof text !== 'string') return [`${where}.${key} must be a String`];
    const parts = text.split('|');
    if (parts.length !== 5) return [`${where}.${key} has ${parts.length} '|'-separated parts, not 5`];
    const [mandatory, type, , , initial] = parts as [string, string, string, string, string];
    if (!contract.userInputs.value.types.includes(type.trim())) return [`${where}.${key}: unknown type ${type}`];
    // an optional number left unanswered is dropped, and the server wants a value for every input
    if (mandatory.trim() === 'O' && /^(number|range)/.test(type.trim()) && initial.trim() === '')
      return [`${where}.${key}: an optional ${type} input needs a default`];
    return [];
  });
}

/** Every problem OneFlow (ServiceTemplate.validate and its CLI) would find in a service template. */
export function serviceTemplateProblems(contract: OneflowContract, doc: Json): string[] {
  const problems = schemaProblems(doc, contract.serviceSchema.value, '');
  if (!isObject(doc) || !Array.isArray(doc.roles)) return problems;
  const roles = doc.roles.filter(isObject);
  if (roles.length > 0 && roles.every((r) => 'vm_template' in r || 'vm_template_contents' in r))
    problems.push('roles use the OpenNebula 6.x format (vm_template): OneFlow 7 wants template_id');
  problems.push(...userInputProblems(contract, doc.user_inputs, 'user_inputs'));
  const names = new Set<Json>();
  roles.forEach((role, i) => {
    const where = `roles[${i}]`;
    problems.push(...roleSchemaProblems(contract, role, where));
    if (names.has(role.name)) problems.push(`${where}: role name ${JSON.stringify(role.name)} is repeated`);
    names.add(role.name);
    if ((role.type ?? 'vm') === 'vm') problems.push(...vmValueProblems(contract, role, where));
    problems.push(...userInputProblems(contract, role.user_inputs, `${where}.user_inputs`));
  });
  return problems;
}
