/**
 * The `.env` contract of the image build: the settings of ./build-vars.ts (re-exported here), read
 * by the build command (`pnpm turbo build:image`, `readBuildEnv()`) and by the setup wizard
 * (`pnpm run setup`, which writes the file with ./env-file.ts).
 *
 * Precedence: command-line flags > real environment variables > the `.env` file > defaults.
 * An empty variable counts as "not set"; an empty flag is a value (`--mirror ''`: no mirror). The file
 * never overrides a real environment variable (dotenv's own rule). Relative paths are relative to the
 * directory of the `.env` file, so the answer does not depend on the directory a task happens to run in
 * (turbo runs tasks in their package directory); `~` is the home directory.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dotenv from 'dotenv';
import { CATALOG, type CatalogEntry } from '@slm-copilot/model-fetch';
import { ExitCode, TaskError, UsageError } from '@slm-copilot/task-kit';
import {
  BUILD_VARS,
  buildVars,
  DEFAULT_BUILD_SETTINGS,
  isUrl,
  MIRROR_ONLY_PROFILES,
  type BuildSettingKey,
  type BuildSettings,
  type BuildVar,
  type Parsed,
} from './build-vars.js';

export * from './build-vars.js';
export { quoteEnvValue, renderEnvFile } from './env-file.js';

export type ValueSource = 'flag' | 'env' | 'file' | 'default';

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
  /**
   * The dotenv file; default `.env` (in the working directory — pass REPO_ENV_FILE from a task
   * directory). A missing file is fine.
   */
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
  /**
   * outputDir, cache and a directory mirror made absolute (relative to `baseDir`, `~` expanded);
   * a URL mirror unchanged.
   */
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

/** Where a setting's raw value comes from: a flag even when empty, else the first non-empty variable. */
function rawValue(
  spec: BuildVar,
  flags: BuildFlags,
  env: Record<string, string | undefined>,
  fromFile: string | undefined,
): [ValueSource, string] | undefined {
  const flag = flags[spec.key];
  if (flag !== undefined) return ['flag', String(flag)];
  const candidates: [ValueSource, string | undefined][] = [
    ['env', env[spec.name]],
    ['file', fromFile],
  ];
  return candidates.find(([, v]) => v !== undefined && v.trim() !== '') as [ValueSource, string] | undefined;
}

/** Parses a raw value; empty means "none" where the setting has no default, and is refused elsewhere. */
function parseRaw(spec: BuildVar, raw: string): Parsed<unknown> {
  const value = raw.trim();
  if (value === '') return spec.default === undefined ? { ok: true, value: undefined } : { ok: false };
  return spec.parse(value);
}

/** The cross-variable rule: a mirror-only profile needs a mirror (unless either value was refused already). */
function mirrorRule(read: Pick<BuildEnvRead, 'settings' | 'sources' | 'issues' | 'file'>): BuildEnvIssue | undefined {
  const { settings, sources, issues, file } = read;
  if (!MIRROR_ONLY_PROFILES.includes(settings.profile) || settings.mirror !== undefined) return undefined;
  if (issues.some((i) => i.key === 'mirror' || i.key === 'profile')) return undefined;
  const spec = BUILD_VARS.mirror;
  return {
    key: 'mirror',
    name: spec.name,
    flag: spec.flag,
    value: '',
    source: sources.mirror,
    expected: `${spec.expected}: the ${settings.profile} profile fetches only from the mirror`,
    ...(sources.mirror === 'file' ? { file } : {}),
    ...(sources.mirror === 'default' ? { blame: sources.profile } : {}),
  };
}

/**
 * Reads flags, environment and file without throwing: every refused value is in `issues`, and
 * `settings` holds the valid values (defaults elsewhere). The wizard uses this to start from a
 * partly broken `.env`; the build uses `readBuildEnv()`.
 */
export function collectBuildEnv(options: ReadBuildEnvOptions = {}): BuildEnvRead {
  const file = path.resolve(options.file ?? '.env');
  const env = options.env ?? process.env;
  const { exists, parsed } = loadFile(file);

  const names = new Set(buildVars().map((v) => v.name));
  const extra = Object.fromEntries(Object.entries(parsed).filter(([k]) => !names.has(k)));
  const settings = { ...DEFAULT_BUILD_SETTINGS } as BuildSettings;
  const sources = {} as Record<BuildSettingKey, ValueSource>;
  const fileValues: Partial<Record<BuildSettingKey, string>> = {};
  const issues: BuildEnvIssue[] = [];

  for (const spec of buildVars()) {
    const fromFile = parsed[spec.name];
    if (fromFile !== undefined) fileValues[spec.key] = fromFile;
    const found = rawValue(spec, options.flags ?? {}, env, fromFile);
    sources[spec.key] = found?.[0] ?? 'default';
    if (!found) continue;
    const [source, raw] = found;
    const result = parseRaw(spec, raw);
    if (result.ok) (settings as unknown as Record<BuildSettingKey, unknown>)[spec.key] = result.value;
    else {
      const { key, name, flag, expected } = spec;
      issues.push({ key, name, flag, value: raw, source, expected, ...(source === 'file' ? { file } : {}) });
    }
  }
  const mirrorIssue = mirrorRule({ settings, sources, issues, file });
  if (mirrorIssue) issues.push(mirrorIssue);
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
    ...(mirror === undefined ? {} : { mirror: isUrl(mirror) ? mirror : resolveSettingPath(mirror, baseDir) }),
  };
}

/**
 * The error for refused values, naming each variable, its value and what is expected. When the flags
 * alone are to blame it is a usage error: one line (exit 2); otherwise one line per variable (exit 3).
 */
export function buildEnvError(issues: readonly BuildEnvIssue[]): TaskError {
  if (issues.every((i) => (i.blame ?? i.source) === 'flag')) return new UsageError(issues.map(formatIssue).join('; '));
  const lines = issues.map((i) => `  ${formatIssue(i)}`);
  return new TaskError(`invalid build settings:\n${lines.join('\n')}`, {
    exitCode: ExitCode.invalidConfig,
    hint: 'fix these values, or run `pnpm run setup` to write a new .env',
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
  if (!modelEntry) {
    throw new TaskError(`internal: model ${read.settings.model} passed validation but is not in the catalog`);
  }
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
