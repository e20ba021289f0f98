/**
 * The `.env` contract of the image build: ONE typed description of the build settings (name,
 * flag, default, what is allowed), shared by the setup wizard (`pnpm run setup`, which writes the
 * file) and the build command (`pnpm turbo build:image`, which reads it with `readBuildEnv()`).
 *
 * Precedence: command-line flags > real environment variables > the `.env` file > defaults.
 * An empty variable counts as "not set"; an empty flag is a value (`--mirror ''`: no mirror). The file never overrides a real environment
 * variable (dotenv's own rule). Relative paths are relative to the directory of the `.env` file, so
 * the answer does not depend on the directory a task happens to run in (turbo runs tasks in their
 * package directory); `~` is the home directory.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dotenv from 'dotenv';
import { variableByName, type Engine } from '@slm-copilot/context-schema';
import { CATALOG, DEFAULT_MODEL_ID, type CatalogEntry } from '@slm-copilot/model-fetch';
import { ExitCode, TaskError } from '@slm-copilot/task-kit';

export const BUILD_PROFILES = ['production', 'offline', 'test'] as const;
export type BuildProfile = (typeof BUILD_PROFILES)[number];

/** The same engines as `ONEAPP_COPILOT_ENGINE` (a test keeps the two lists equal). */
export const BUILD_ENGINES = ['localai', 'llama-server'] as const satisfies readonly Engine[];
export type BuildEngine = (typeof BUILD_ENGINES)[number];

/**
 * Profiles that take every input from SLM_COPILOT_MIRROR (so it is required). The test profile makes
 * its inputs here (the tiny test GGUF, the llama-server build) and stages them itself: a mirror is optional.
 */
export const MIRROR_ONLY_PROFILES: readonly BuildProfile[] = ['offline'];

/** The build settings, as written in `.env` (paths not yet resolved). */
export interface BuildSettings {
  profile: BuildProfile;
  /** A model-fetch catalog id. */
  model: string;
  engine: BuildEngine;
  /** Context size baked into the marketplace template as ONEAPP_COPILOT_CONTEXT_SIZE's default. */
  contextSize: number;
  outputDir: string;
  /** A local directory or an http(s):// base URL tried before upstream; undefined = none. */
  mirror?: string;
  cache: string;
}
export type BuildSettingKey = keyof BuildSettings;
export type ValueSource = 'flag' | 'env' | 'file' | 'default';

type Parsed<T> = { ok: true; value: T } | { ok: false };

/** One build setting: everything the wizard, the file renderer, the flags and the errors need. */
export interface BuildVar<K extends BuildSettingKey = BuildSettingKey> {
  key: K;
  /** The environment / .env variable. */
  name: string;
  /** The command-line flag of the wizard (and of the build command). */
  flag: string;
  /** One sentence for the .env comment and --help. */
  description: string;
  /** What is allowed, as the user is told when a value is refused. */
  expected: string;
  default: BuildSettings[K];
  /** Enumerations only. */
  choices?: readonly string[];
  /** Parses a non-empty raw value. */
  parse(raw: string): Parsed<BuildSettings[K]>;
}

const contextSpec = variableByName.get('ONEAPP_COPILOT_CONTEXT_SIZE');
if (
  !contextSpec ||
  typeof contextSpec.default !== 'number' ||
  contextSpec.minimum === undefined ||
  contextSpec.maximum === undefined
) {
  throw new Error(
    'internal: ONEAPP_COPILOT_CONTEXT_SIZE in the context schema has no numeric default, minimum or maximum',
  );
}
/** Bounds and default of the context size: those of ONEAPP_COPILOT_CONTEXT_SIZE in the context schema. */
export const CONTEXT_SIZE = {
  default: contextSpec.default,
  min: contextSpec.minimum,
  max: contextSpec.maximum,
} as const;

const oneOf =
  <T extends string>(choices: readonly T[]) =>
  (raw: string): Parsed<T> =>
    (choices as readonly string[]).includes(raw) ? { ok: true, value: raw as T } : { ok: false };

// Control characters would break the file; a value with both quote kinds cannot be written as a
// dotenv value (dotenv has no escapes for quotes), so paths may contain neither quote.
const PATH_OK = /^[^\x00-\x1f\x7f'"]+$/;
const parsePath = (raw: string): Parsed<string> => (PATH_OK.test(raw) ? { ok: true, value: raw } : { ok: false });

function parseMirror(raw: string): Parsed<string | undefined> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    if (!/^https?:\/\//i.test(raw) || !PATH_OK.test(raw)) return { ok: false };
    try {
      const url = new URL(raw);
      if (url.hostname === '' || url.search !== '' || url.hash !== '') return { ok: false };
    } catch {
      return { ok: false };
    }
    return { ok: true, value: raw };
  }
  return parsePath(raw);
}

export const BUILD_VARS: { readonly [K in BuildSettingKey]: BuildVar<K> } = {
  profile: {
    key: 'profile',
    name: 'SLM_COPILOT_PROFILE',
    flag: '--profile',
    description:
      'Build profile: production (Ubuntu 24.04 base, artifacts from upstream after the mirror; needs the internet and KVM), ' +
      'offline (the production image from the mirror only; needs KVM), test (the Debian test base under TCG, the tiny ' +
      'test model and a LocalAI stand-in; needs the npm registry, Debian apt and root).',
    expected: 'production, offline or test',
    default: 'production',
    choices: BUILD_PROFILES,
    parse: oneOf(BUILD_PROFILES),
  },
  model: {
    key: 'model',
    name: 'SLM_COPILOT_MODEL',
    flag: '--model',
    description:
      `Model baked into the image: an id of the model-fetch catalog (${CATALOG.map((e) => e.id).join(', ')}). ` +
      'The test profile always bakes the tiny test GGUF (served under this id).',
    expected: `a catalog model id: ${CATALOG.map((e) => e.id).join(', ')}`,
    default: DEFAULT_MODEL_ID,
    choices: CATALOG.map((e) => e.id),
    parse: oneOf(CATALOG.map((e) => e.id)),
  },
  engine: {
    key: 'engine',
    name: 'SLM_COPILOT_ENGINE',
    flag: '--engine',
    description:
      'Default inference engine of the image (ONEAPP_COPILOT_ENGINE can switch it per VM): localai or llama-server.',
    expected: 'localai or llama-server',
    default: 'localai',
    choices: BUILD_ENGINES,
    parse: oneOf(BUILD_ENGINES),
  },
  contextSize: {
    key: 'contextSize',
    name: 'SLM_COPILOT_CONTEXT_SIZE',
    flag: '--context-size',
    description: 'Default context size in tokens baked into the marketplace template (ONEAPP_COPILOT_CONTEXT_SIZE).',
    expected: `an integer from ${CONTEXT_SIZE.min} to ${CONTEXT_SIZE.max}`,
    default: CONTEXT_SIZE.default,
    parse: (raw) => {
      if (!/^\d{1,9}$/.test(raw)) return { ok: false };
      const n = Number(raw);
      return n >= CONTEXT_SIZE.min && n <= CONTEXT_SIZE.max ? { ok: true, value: n } : { ok: false };
    },
  },
  outputDir: {
    key: 'outputDir',
    name: 'SLM_COPILOT_OUTPUT_DIR',
    flag: '--output',
    description: 'Where the built image goes.',
    expected: 'a directory path without control characters or quotes',
    default: './output',
    parse: parsePath,
  },
  mirror: {
    key: 'mirror',
    name: 'SLM_COPILOT_MIRROR',
    flag: '--mirror',
    description:
      'Mirror tried before upstream: a local directory or an http(s):// base laid out as <mirror>/<artifact-name>. ' +
      'Its files are staged into the build VM. Required by the offline profile, which fetches only from it. Empty: no mirror.',
    expected: 'a local directory or an http(s):// base URL (no query or fragment)',
    default: undefined,
    parse: parseMirror,
  },
  cache: {
    key: 'cache',
    name: 'SLM_COPILOT_CACHE',
    flag: '--cache',
    description: 'Host cache of downloads and engine builds, keyed by version and inputs.',
    expected: 'a directory path without control characters or quotes',
    default: '~/.cache/slm-copilot',
    parse: parsePath,
  },
};

/** The order of the variables in `.env`, in --help and in the wizard. */
export const BUILD_VAR_ORDER: readonly BuildSettingKey[] = [
  'profile',
  'model',
  'engine',
  'contextSize',
  'outputDir',
  'mirror',
  'cache',
];

export const buildVars = (): BuildVar[] => BUILD_VAR_ORDER.map((k) => BUILD_VARS[k] as BuildVar);

export const DEFAULT_BUILD_SETTINGS: Readonly<BuildSettings> = Object.freeze(
  Object.fromEntries(BUILD_VAR_ORDER.map((k) => [k, BUILD_VARS[k].default])) as unknown as BuildSettings,
);

/** The repository's `.env` (the build's default file whatever the working directory). */
export const REPO_ENV_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../.env');

/** One refused value. */
export interface BuildEnvIssue {
  key: BuildSettingKey;
  name: string;
  flag: string;
  /** The raw value ('' when the variable is required but not set). */
  value: string;
  source: ValueSource;
  expected: string;
  /** The file the value came from (source 'file'). */
  file?: string;
  /** For a rule between variables: where the value that demands this one came from (e.g. the profile's). */
  blame?: ValueSource;
}

export function formatIssue(issue: BuildEnvIssue): string {
  const value = JSON.stringify(issue.value);
  const where =
    issue.source === 'flag'
      ? `${issue.flag} ${value} (${issue.name})`
      : issue.source === 'env'
        ? `${issue.name}=${value} (from the environment)`
        : issue.source === 'file'
          ? `${issue.name}=${value} (in ${issue.file})`
          : `${issue.name} (${issue.flag}) is not set`;
  return `${where}: expected ${issue.expected}`;
}

export type BuildFlags = Partial<Record<BuildSettingKey, string | number | undefined>>;

export interface ReadBuildEnvOptions {
  /** The dotenv file; default `.env` (in the working directory — pass REPO_ENV_FILE from a task directory). A missing file is fine. */
  file?: string;
  /** Real environment variables; default process.env. Never overridden by the file. */
  env?: Record<string, string | undefined>;
  /** Command-line values; they win over everything. */
  flags?: BuildFlags;
  /** Where relative paths are resolved; default the directory of `file`. */
  baseDir?: string;
}

export interface BuildEnvRead {
  /** Valid values with defaults filled in; a refused value is replaced by its default (see `issues`). */
  settings: BuildSettings;
  sources: Record<BuildSettingKey, ValueSource>;
  issues: BuildEnvIssue[];
  /** The absolute path of the file. */
  file: string;
  fileExists: boolean;
  /** The raw values the file sets for the contract's variables. */
  fileValues: Partial<Record<BuildSettingKey, string>>;
  /** Variables of the file that are not part of the contract (kept by the wizard when it rewrites the file). */
  extra: Record<string, string>;
}

/** The settings with absolute paths and the catalog entry: what `readBuildEnv()` returns. */
export interface BuildEnv extends BuildSettings {
  sources: Record<BuildSettingKey, ValueSource>;
  file: string;
  fileExists: boolean;
  extra: Record<string, string>;
  modelEntry: CatalogEntry;
  /** outputDir, cache and a directory mirror made absolute (relative to `baseDir`, `~` expanded); a URL mirror unchanged. */
  resolved: { outputDir: string; cache: string; mirror?: string };
}

function loadFile(file: string): { exists: boolean; parsed: Record<string, string> } {
  if (!existsSync(file)) return { exists: false, parsed: {} };
  // dotenv writes into the object we give it, never process.env; quiet: no "injecting env" line.
  const result = dotenv.config({ path: file, quiet: true, processEnv: {} });
  if (result.error) {
    throw new TaskError(`cannot read ${file}: ${result.error.message}`, {
      exitCode: ExitCode.environment,
      cause: result.error,
    });
  }
  return { exists: true, parsed: result.parsed ?? {} };
}

/**
 * Reads flags, environment and file without throwing: every refused value is in `issues`, and
 * `settings` holds the valid values (defaults elsewhere). The wizard uses this to start from a
 * partly broken `.env`; the build uses `readBuildEnv()`.
 */
export function collectBuildEnv(options: ReadBuildEnvOptions = {}): BuildEnvRead {
  const file = path.resolve(options.file ?? '.env');
  const env = options.env ?? process.env;
  const flags = options.flags ?? {};
  const { exists, parsed } = loadFile(file);

  const names = new Set(buildVars().map((v) => v.name));
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) if (!names.has(k)) extra[k] = v;

  const settings = { ...DEFAULT_BUILD_SETTINGS } as BuildSettings;
  const sources = {} as Record<BuildSettingKey, ValueSource>;
  const fileValues: Partial<Record<BuildSettingKey, string>> = {};
  const issues: BuildEnvIssue[] = [];
  const set = settings as unknown as Record<BuildSettingKey, unknown>;

  for (const spec of buildVars()) {
    const fromFile = parsed[spec.name];
    if (fromFile !== undefined) fileValues[spec.key] = fromFile;
    const flag = flags[spec.key];
    // A flag counts even when empty (`--mirror ''` = no mirror); an empty variable counts as unset.
    const candidates: [ValueSource, string | undefined][] = [
      ['env', env[spec.name]],
      ['file', fromFile],
    ];
    const found: [ValueSource, string] | undefined =
      flag !== undefined
        ? ['flag', String(flag)]
        : (candidates.find(([, v]) => v !== undefined && v.trim() !== '') as [ValueSource, string] | undefined);
    if (!found) {
      sources[spec.key] = 'default';
      continue;
    }
    const [source, raw] = found;
    const value = raw.trim();
    sources[spec.key] = source;
    const result: Parsed<unknown> =
      value === '' ? (spec.default === undefined ? { ok: true, value: undefined } : { ok: false }) : spec.parse(value);
    if (result.ok) {
      set[spec.key] = result.value;
    } else {
      issues.push({
        key: spec.key,
        name: spec.name,
        flag: spec.flag,
        value: raw,
        source,
        expected: spec.expected,
        ...(source === 'file' ? { file } : {}),
      });
    }
  }

  // Cross-variable rule: the mirror-only profiles need a mirror.
  const mirrorRefused = issues.some((i) => i.key === 'mirror');
  if (
    MIRROR_ONLY_PROFILES.includes(settings.profile) &&
    settings.mirror === undefined &&
    !mirrorRefused &&
    !issues.some((i) => i.key === 'profile')
  ) {
    const spec = BUILD_VARS.mirror;
    issues.push({
      key: 'mirror',
      name: spec.name,
      flag: spec.flag,
      value: '',
      source: sources.mirror,
      expected: `${spec.expected}: the ${settings.profile} profile fetches only from the mirror`,
      ...(sources.mirror === 'file' ? { file } : {}),
      ...(sources.mirror === 'default' ? { blame: sources.profile } : {}),
    });
  }
  return { settings, sources, issues, file, fileExists: exists, fileValues, extra };
}

/** Makes a path setting absolute: `~` is the home directory, relative paths are relative to `baseDir`. */
export function resolveSettingPath(value: string, baseDir: string, home = process.env.HOME || homedir()): string {
  if (value === '~') return home;
  if (value.startsWith('~/')) return path.join(home, value.slice(2));
  return path.resolve(baseDir, value);
}

export function resolveBuildPaths(settings: BuildSettings, baseDir: string): BuildEnv['resolved'] {
  const mirror = settings.mirror;
  return {
    outputDir: resolveSettingPath(settings.outputDir, baseDir),
    cache: resolveSettingPath(settings.cache, baseDir),
    ...(mirror === undefined
      ? {}
      : { mirror: /^https?:\/\//i.test(mirror) ? mirror : resolveSettingPath(mirror, baseDir) }),
  };
}

/** The TaskError for refused values: one line per variable, naming its value and what is expected. */
export function buildEnvError(issues: readonly BuildEnvIssue[]): TaskError {
  const lines = issues.map((i) => `  ${formatIssue(i)}`);
  const allFlags = issues.every((i) => (i.blame ?? i.source) === 'flag');
  return new TaskError(`invalid build settings:\n${lines.join('\n')}`, {
    exitCode: allFlags ? ExitCode.usage : ExitCode.invalidConfig,
    hint: allFlags ? 'see pnpm run setup --help' : 'fix these values, or run `pnpm run setup` to write a new .env',
  });
}

/**
 * The build settings: flags win over real environment variables, which win over the `.env` file
 * (read with dotenv, never overriding the environment), which wins over the defaults.
 * Throws a TaskError naming each refused variable, its value and what is expected.
 */
export function readBuildEnv(options: ReadBuildEnvOptions = {}): BuildEnv {
  const read = collectBuildEnv(options);
  if (read.issues.length > 0) throw buildEnvError(read.issues);
  const baseDir = options.baseDir ?? path.dirname(read.file);
  const modelEntry = CATALOG.find((e) => e.id === read.settings.model);
  if (!modelEntry)
    throw new TaskError(`internal: model ${read.settings.model} passed validation but is not in the catalog`);
  return {
    ...read.settings,
    sources: read.sources,
    file: read.file,
    fileExists: read.fileExists,
    extra: read.extra,
    modelEntry,
    resolved: resolveBuildPaths(read.settings, baseDir),
  };
}

/** The raw text a setting is written as (the mirror's "none" is empty). */
export function settingText(value: BuildSettings[BuildSettingKey]): string {
  return value === undefined ? '' : String(value);
}

/** The settings as SLM_COPILOT_* variables, e.g. for a child process's environment (no mirror: absent). */
export function buildEnvVars(settings: BuildSettings): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of buildVars()) {
    const text = settingText(settings[spec.key]);
    if (text !== '') out[spec.name] = text;
  }
  return out;
}

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

function commentLines(text: string, width = 100): string[] {
  const lines: string[] = [];
  let line = '#';
  for (const word of text.split(/\s+/)) {
    if (line.length + 1 + word.length > width && line !== '#') {
      lines.push(line);
      line = '#';
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines;
}

/**
 * The `.env` text: a header, then every variable of the contract in a stable order, each with its
 * comment; variables of an earlier file that are not part of the contract are kept at the end.
 */
export function renderEnvFile(settings: BuildSettings, options: { extra?: Record<string, string> } = {}): string {
  const out = [
    '# SLM-Copilot image build settings (the contract: scripts/src/build-env.ts).',
    '# Written by `pnpm run setup`; read by `pnpm turbo build:image` (or `npm run build:image`).',
    '# Command-line flags and real environment variables of the same name win over this file.',
    "# Relative paths are relative to this file's directory; ~ is the home directory.",
  ];
  for (const spec of buildVars()) {
    const raw = settingText(settings[spec.key]);
    if (raw !== '') {
      const check = spec.parse(raw);
      if (!check.ok)
        throw new TaskError(
          `internal: refusing to write ${spec.name}=${JSON.stringify(raw)}: expected ${spec.expected}`,
        );
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
