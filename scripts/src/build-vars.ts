/**
 * The build settings: ONE typed list (BUILD_VARS) of every setting of the image build — its variable,
 * flag, default and what is allowed. The `.env` reader (./build-env.ts), the `.env` writer
 * (./env-file.ts), the command-line flags of build-image and setup (./build-flags.ts) and the wizard's
 * questions are all made from it.
 */
import { variableByName, type Engine } from '@slm-copilot/context-schema';
import { CATALOG, DEFAULT_MODEL_ID } from '@slm-copilot/model-fetch';

export const BUILD_PROFILES = ['production', 'offline', 'test'] as const;
export type BuildProfile = (typeof BUILD_PROFILES)[number];

/** What each profile builds and what it needs of the build host: the help texts and the wizard say it so. */
export const PROFILE_INFO: Readonly<Record<BuildProfile, { what: string; needs: string }>> = {
  production: {
    what: 'Ubuntu 24.04 base, artifacts from upstream after the mirror',
    needs: 'the internet and KVM',
  },
  offline: { what: 'the production image from the mirror only', needs: 'KVM and the npm registry' },
  test: {
    what: 'the Debian test base under TCG, the tiny test model and a LocalAI stand-in',
    needs: 'the npm registry, Debian apt and root; no KVM',
  },
};

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

export type Parsed<T> = { ok: true; value: T } | { ok: false };

/** One build setting: everything the wizard, the file renderer, the flags and the errors need. */
export interface BuildVar<K extends BuildSettingKey = BuildSettingKey> {
  key: K;
  /** The environment / .env variable. */
  name: string;
  /** The command-line flag of the wizard and of the build command. */
  flag: string;
  /** The flag's value in a usage line: `--mirror DIR|URL`. */
  placeholder: string;
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

/** An http(s):// base URL (also how a mirror setting tells a URL from a directory). */
export const isUrl = (value: string): boolean => /^https?:\/\//i.test(value);

// Control characters would break the file; a value with both quote kinds cannot be written as a
// dotenv value (dotenv has no escapes for quotes), so paths may contain neither quote.
const pathOk = (raw: string): boolean =>
  raw.length > 0 && [...raw].every((c) => c.charCodeAt(0) > 0x1f && c.charCodeAt(0) !== 0x7f && !`'"`.includes(c));
const parsePath = (raw: string): Parsed<string> => (pathOk(raw) ? { ok: true, value: raw } : { ok: false });

function parseMirror(raw: string): Parsed<string | undefined> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
    if (!isUrl(raw) || !pathOk(raw)) return { ok: false };
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

const catalogIds = CATALOG.map((e) => e.id);

export const BUILD_VARS: { readonly [K in BuildSettingKey]: BuildVar<K> } = {
  profile: {
    key: 'profile',
    name: 'SLM_COPILOT_PROFILE',
    flag: '--profile',
    placeholder: 'PROFILE',
    description: `Build profile: ${BUILD_PROFILES.map(
      (p) => `${p} (${PROFILE_INFO[p].what}; needs ${PROFILE_INFO[p].needs})`,
    ).join(', ')}.`,
    expected: 'production, offline or test',
    default: 'production',
    choices: BUILD_PROFILES,
    parse: oneOf(BUILD_PROFILES),
  },
  model: {
    key: 'model',
    name: 'SLM_COPILOT_MODEL',
    flag: '--model',
    placeholder: 'ID',
    description:
      `Model baked into the image: an id of the model-fetch catalog (${catalogIds.join(', ')}). ` +
      'The test profile always bakes the tiny test GGUF (served under this id).',
    expected: `a catalog model id: ${catalogIds.join(', ')}`,
    default: DEFAULT_MODEL_ID,
    choices: catalogIds,
    parse: oneOf(catalogIds),
  },
  engine: {
    key: 'engine',
    name: 'SLM_COPILOT_ENGINE',
    flag: '--engine',
    placeholder: 'ENGINE',
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
    placeholder: 'N',
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
    placeholder: 'DIR',
    description: 'Where the built image goes.',
    expected: 'a directory path without control characters or quotes',
    default: './output',
    parse: parsePath,
  },
  mirror: {
    key: 'mirror',
    name: 'SLM_COPILOT_MIRROR',
    flag: '--mirror',
    placeholder: 'DIR|URL',
    description:
      'Mirror tried before upstream: a local directory or an http(s):// base laid out as ' +
      '<mirror>/<artifact-name>. Its files are staged into the build VM. Required by the offline profile, ' +
      'which fetches only from it. Empty: no mirror.',
    expected: 'a local directory or an http(s):// base URL (no query or fragment)',
    default: undefined,
    parse: parseMirror,
  },
  cache: {
    key: 'cache',
    name: 'SLM_COPILOT_CACHE',
    flag: '--cache',
    placeholder: 'DIR',
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

/** The raw text a setting is written as (the mirror's "none" is empty). */
export function settingText(value: BuildSettings[BuildSettingKey]): string {
  return value === undefined ? '' : String(value);
}
