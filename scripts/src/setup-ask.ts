/**
 * The wizard's questions: one per build setting the chosen profile uses, each checked in place by the
 * setting's own parser (./build-vars.ts). A setting given as a flag is not asked.
 */
import * as p from '@clack/prompts';
import { CATALOG } from '@slm-copilot/model-fetch';
import {
  BUILD_PROFILES,
  BUILD_VARS,
  CONTEXT_SIZE,
  MIRROR_ONLY_PROFILES,
  PROFILE_INFO,
  settingText,
  type BuildProfile,
  type BuildSettingKey,
  type BuildSettings,
} from './build-vars.js';
import type { KvmProbe } from './host-probes.js';

/** 128 + SIGINT: what a shell reports for Ctrl-C; the wizard exits with it whenever it is cancelled. */
export const EXIT_CANCELLED = 130;

export function cancelled(): never {
  p.cancel('Setup cancelled: nothing was written.');
  process.exit(EXIT_CANCELLED);
}

function answer<T>(value: T): Exclude<T, symbol> {
  if (p.isCancel(value)) cancelled();
  return value as Exclude<T, symbol>;
}

const validator = (key: BuildSettingKey) => (value: string | undefined) => {
  const v = (value ?? '').trim();
  if (v === '') return undefined;
  return BUILD_VARS[key].parse(v).ok ? undefined : `expected ${BUILD_VARS[key].expected}`;
};

async function askProfile(current: BuildProfile, kvm: KvmProbe): Promise<BuildProfile> {
  const noKvm = kvm.usable ? '' : ' (not on this machine)';
  return answer(
    await p.select<BuildProfile>({
      message: 'Build profile',
      initialValue: current,
      options: BUILD_PROFILES.map((value) => {
        const { what, needs } = PROFILE_INFO[value];
        // the test profile runs under TCG: only the others need KVM
        return { value, label: value, hint: `${what}: needs ${needs}${value === 'test' ? '' : noKvm}` };
      }),
    }),
  );
}

async function askModel(current: string): Promise<string> {
  return answer(
    await p.select<string>({
      message: 'Model (download sizes are approximate)',
      initialValue: current,
      options: CATALOG.map((e) => ({ value: e.id, label: `${e.id}  ~${e.approxSizeGB} GB`, hint: e.title })),
    }),
  );
}

async function askEngine(current: BuildSettings['engine']): Promise<BuildSettings['engine']> {
  return answer(
    await p.select<BuildSettings['engine']>({
      message: 'Default inference engine',
      initialValue: current,
      options: [
        { value: 'localai', label: 'localai', hint: 'LocalAI with its llama-cpp backend' },
        { value: 'llama-server', label: 'llama-server', hint: "llama.cpp's own server" },
      ],
    }),
  );
}

async function askContextSize(current: number): Promise<number> {
  const text = answer(
    await p.text({
      message: `Context size in tokens (${CONTEXT_SIZE.min}-${CONTEXT_SIZE.max}), the template's default`,
      placeholder: String(current),
      defaultValue: String(current),
      validate: validator('contextSize'),
    }),
  );
  const parsed = BUILD_VARS.contextSize.parse(text.trim() || String(current));
  return parsed.ok ? parsed.value : current;
}

async function askOutputDir(current: string): Promise<string> {
  const text = answer(
    await p.text({
      message: 'Output directory for the image',
      placeholder: current,
      defaultValue: current,
      validate: validator('outputDir'),
    }),
  );
  return text.trim() || current;
}

async function askMirror(current: string | undefined, profile: BuildProfile): Promise<string | undefined> {
  const required = MIRROR_ONLY_PROFILES.includes(profile);
  const text = answer(
    await p.text({
      message: required
        ? `Mirror (required: the ${profile} profile fetches only from it) — a directory or an http(s):// base`
        : 'Mirror (optional) — a directory (its files are staged into the build VM) or an http(s):// base; ' +
          'empty: none',
      initialValue: current ?? '',
      validate: (value) => {
        if ((value ?? '').trim() !== '') return validator('mirror')(value);
        return required ? `the ${profile} profile needs a mirror: a directory or an http(s):// base URL` : undefined;
      },
    }),
  ).trim();
  return text === '' ? undefined : text;
}

/** Asks what the flags did not answer, in the order of the settings; returns the answered settings. */
export async function ask(settings: BuildSettings, given: Set<BuildSettingKey>, kvm: KvmProbe): Promise<BuildSettings> {
  const s = { ...settings };
  const fromFlag = (key: BuildSettingKey) => {
    if (!given.has(key)) return false;
    p.log.step(`${BUILD_VARS[key].name}: ${settingText(s[key]) || '(none)'} (from ${BUILD_VARS[key].flag})`);
    return true;
  };
  if (!fromFlag('profile')) s.profile = await askProfile(s.profile, kvm);
  if (s.profile === 'test') {
    p.log.step(`${BUILD_VARS.model.name}: not asked (the test profile always bakes the tiny test GGUF)`);
  } else if (!fromFlag('model')) s.model = await askModel(s.model);
  if (!fromFlag('engine')) s.engine = await askEngine(s.engine);
  if (!fromFlag('contextSize')) s.contextSize = await askContextSize(s.contextSize);
  if (!fromFlag('outputDir')) s.outputDir = await askOutputDir(s.outputDir);
  if (!fromFlag('mirror')) s.mirror = await askMirror(s.mirror, s.profile);
  return s;
}
