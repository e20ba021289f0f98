// Test harness (never shipped): checks a render against the facts extracted from the pinned engines' sources.
import { readFileSync } from 'node:fs';
import { LOCALAI_VERSION } from '../src/versions.js';

/**
 * Facts extracted from the pinned engines' sources (contract/*.json, with source paths), used to
 * prove we never write a model-YAML key, option, env name or flag the engine does not read.
 */
interface LocalAiContract {
  tag: string;
  modelYamlKeys: { path: string }[];
  llamaCppBackendOptions: { options: { names: string[] }[] };
  cliFlags: { globalFlags: { env?: string[] }[]; run: { flags: { kind: string; flag?: string; env?: string[] }[] } };
}
interface LlamaServerContract {
  tag: string;
  flags: Record<string, { flags: string[]; negFlags?: string[] }>;
}

const read = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../contract/${name}`, import.meta.url), 'utf8')) as T;

export function loadContracts() {
  const localai = read<LocalAiContract>(`localai-${LOCALAI_VERSION}.json`);
  const llama = read<LlamaServerContract>('llama-server.json');
  return {
    localaiTag: localai.tag,
    modelYamlKeys: new Set(localai.modelYamlKeys.map((k) => k.path)),
    backendOptions: new Set(localai.llamaCppBackendOptions.options.flatMap((o) => o.names)),
    localaiEnv: new Set([...localai.cliFlags.globalFlags, ...localai.cliFlags.run.flags].flatMap((f) => f.env ?? [])),
    llamaServerFlags: new Set(Object.values(llama.flags).flatMap((f) => [...f.flags, ...(f.negFlags ?? [])])),
  };
}
export type Contracts = ReturnType<typeof loadContracts>;

/** Dotted paths of every leaf key in a YAML object (arrays of scalars count as the key itself). */
export function yamlKeyPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
    const here = prefix ? `${prefix}.${k}` : k;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? yamlKeyPaths(v, here) : [here];
  });
}

/** Everything in our LocalAI render and llama-server command line that the contracts do not list. */
export function contractViolations(
  contracts: Contracts,
  rendered: { modelYaml: Record<string, unknown>; localaiEnv: Record<string, string>; llamaServerArgs: string[] },
): string[] {
  const problems: string[] = [];
  for (const key of yamlKeyPaths(rendered.modelYaml)) {
    if (!contracts.modelYamlKeys.has(key))
      problems.push(`model YAML key "${key}" is not read by LocalAI ${contracts.localaiTag}`);
  }
  for (const option of (rendered.modelYaml.options as string[] | undefined) ?? []) {
    const name = option.split(':')[0]!;
    if (name.startsWith('-')) {
      if (!contracts.llamaServerFlags.has(name))
        problems.push(`passthrough option "${option}" is not a llama.cpp flag`);
    } else if (!contracts.backendOptions.has(name)) {
      problems.push(`backend option "${name}" is not parsed by LocalAI's llama-cpp backend`);
    }
  }
  for (const env of Object.keys(rendered.localaiEnv)) {
    if (!contracts.localaiEnv.has(env)) problems.push(`environment variable ${env} is not read by local-ai run`);
  }
  for (const arg of rendered.llamaServerArgs) {
    if (arg.startsWith('-') && !contracts.llamaServerFlags.has(arg))
      problems.push(`llama-server flag ${arg} does not exist`);
  }
  return problems;
}
