/**
 * The one image recipe: what every profile installs, decided before anything is downloaded or built
 * (`recipeFor`, pure), then completed with the artifacts made on this host (`finishPlan`, pure).
 * The profiles differ only in inputs that cannot exist on every machine (README, "Profiles"):
 * the base image, the model, LocalAI (a stand-in in test), and whether upstream may be used.
 */
import path from 'node:path';
import type { BuildPlan, PlannedArtifact } from '@slm-copilot/lifecycle';
import { findModel, missingLockHint, type ArtifactsLock } from '@slm-copilot/model-fetch';
import { STAGED_MIRROR_DIR } from '@slm-copilot/vm';
import type { BuildEnv, BuildProfile } from './build-env.js';

/** The file name of the tiny test GGUF in the staged mirror. */
export const TEST_MODEL_FILE = 'slm-copilot-test-tiny-Q4_K_M.gguf';

/**
 * apt packages the appliance needs at run time: the same in every profile (the Debian test base
 * already carries them, packages/rig/vm/src/base-image.ts; Ubuntu gets them at build time).
 */
export const APT_PACKAGES: readonly string[] = ['nginx', 'openssl', 'certbot', 'libgomp1'];

/** The model of the recipe: a locked catalog model, or (test) the tiny GGUF made on this host. */
export type RecipeModel =
  | { kind: 'locked'; id: string; artifact: PlannedArtifact }
  | { kind: 'missing-lock'; id: string; approxBytes: number; hint: string }
  | { kind: 'test'; id: string; file: string };

/** Everything decided before any download or build. */
export interface BuildRecipe {
  profile: BuildProfile;
  engineDefault: BuildPlan['engineDefault'];
  mirrors: string[];
  upstream: boolean;
  localai: BuildPlan['localai'];
  aptPackages: string[];
  model: RecipeModel;
  /** What the build makes on this host and stages into the build VM's mirror. */
  staged: string[];
  /** The user's mirror directory staged beside them (a URL mirror is listed in `mirrors` instead). */
  hostMirror?: string;
}

/** What the build made on this host (the inputs of `finishPlan`). */
export interface StagedArtifacts {
  llamaServer: { file: string; sha256: string; size: number };
  testModel?: { sha256: string; size: number };
}

/** The settings a recipe reads (a BuildEnv, or the wizard's answers with resolved paths). */
export type RecipeSettings = Pick<BuildEnv, 'profile' | 'model' | 'engine' | 'resolved'>;

const isUrl = (mirror: string) => /^https?:\/\//i.test(mirror);

function recipeModel(env: RecipeSettings, lock: ArtifactsLock, lockPath: string): RecipeModel {
  if (env.profile === 'test') return { kind: 'test', id: env.model, file: TEST_MODEL_FILE };
  const entry = findModel(env.model);
  const a = lock.artifacts[entry.id];
  if (!a || typeof a.url !== 'string' || !/^[0-9a-f]{64}$/.test(String(a.sha256)) || !(a.size > 0)) {
    return {
      kind: 'missing-lock',
      id: entry.id,
      approxBytes: entry.approxSizeGB * 1e9,
      hint: missingLockHint(entry.id, lockPath),
    };
  }
  // The installed name is the locked URL's (the catalog's name may differ from the file the lock pins).
  const file = decodeURIComponent(path.posix.basename(new URL(a.url).pathname));
  return { kind: 'locked', id: entry.id, artifact: { file, sha256: a.sha256, size: a.size, url: a.url } };
}

/** The recipe of a build: pure (reads only the lock given), so a production build plans without network. */
export function recipeFor(env: RecipeSettings, lock: ArtifactsLock, lockPath: string): BuildRecipe {
  const mirror = env.resolved.mirror;
  return {
    profile: env.profile,
    engineDefault: env.engine,
    // The staged directory first; a URL mirror after it (the build VM reaches it over its network).
    mirrors: [STAGED_MIRROR_DIR, ...(mirror !== undefined && isUrl(mirror) ? [mirror] : [])],
    upstream: env.profile === 'production',
    // LocalAI cannot be downloaded on our machines: the test image carries a stand-in that cannot serve.
    localai: env.profile === 'test' ? { kind: 'stand-in' } : { kind: 'release' },
    aptPackages: [...APT_PACKAGES],
    model: recipeModel(env, lock, lockPath),
    staged: ['llama-server (runtime-dispatching build)', ...(env.profile === 'test' ? ['tiny test model'] : [])],
    ...(mirror !== undefined && !isUrl(mirror) ? { hostMirror: mirror } : {}),
  };
}

/** The BuildPlan handed to the install stage: the recipe plus the staged artifacts' checksums. */
export function finishPlan(recipe: BuildRecipe, staged: StagedArtifacts): BuildPlan {
  const m = recipe.model;
  let model: PlannedArtifact;
  if (m.kind === 'locked') model = m.artifact;
  else if (m.kind === 'test') {
    if (!staged.testModel) throw new Error('internal: the test profile needs the staged tiny model');
    model = { file: m.file, sha256: staged.testModel.sha256, size: staged.testModel.size, url: null };
  } else throw new Error(`internal: ${m.id} has no lock entry (the preflight refuses this)`);
  return {
    profile: recipe.profile,
    engineDefault: recipe.engineDefault,
    mirrors: recipe.mirrors,
    upstream: recipe.upstream,
    model,
    localai: recipe.localai,
    llamaServer: { ...staged.llamaServer, url: null },
    aptPackages: recipe.aptPackages,
  };
}
