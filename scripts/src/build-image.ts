/**
 * build-image: the appliance image (QCOW2 + manifest + marketplace YAML), one recipe for every profile:
 * settings (./build-env.ts) → recipe (./build-plan.ts, no network) → preflight (./preflight.ts: refuses
 * before any download or build) → staged artifacts (./stage.ts) → bundle → Packer (packages/rig/vm).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildPlan } from '@slm-copilot/lifecycle';
import { LOCALAI_VERSION } from '@slm-copilot/localai-install';
import { readLock } from '@slm-copilot/model-fetch';
import { runCommand, UsageError, type Logger } from '@slm-copilot/task-kit';
import { NODE_LLAMA_CPP_VERSION } from '@slm-copilot/testbed';
import { buildImage, ensureBaseImage, type BuildImageResult } from '@slm-copilot/vm';
import { BUILD_VARS, DEFAULT_BUILD_SETTINGS, readBuildEnv, REPO_ENV_FILE, type BuildEnv } from './build-env.js';
import { buildVarOptionHelp, buildVarOptions, flagsFromValues } from './build-flags.js';
import { finishPlan, recipeFor, TEST_MODEL_FILE, type BuildRecipe, type StagedArtifacts } from './build-plan.js';
import { resolveBaseImageChecksum } from './base-image-pin.js';
import { bundleAppliance, repoRoot } from './bundle.js';
import { hostProbes, type HostProbes } from './host-probes.js';
import { imageFacts, renderMarketplaceYaml, type ImageFacts } from './marketplace.js';
import { NODE_RUNTIME } from './node-runtime.js';
import { LOCK_FILE } from './lock-file.js';
import { preflightChecks, preflightError, type Check } from './preflight.js';
import { hostOnlyMirrorFile, offlineBaseImage, verifyMirror } from './mirror.js';
import { stageArtifacts } from './stage.js';

export const APPLIANCE_VERSION = '0.1.0';
/** Where the Packer template uploads the bundle inside the build VM (packer var staging_dir + /bundle). */
const STAGED_BUNDLE = '/var/tmp/slm-copilot-build/bundle';
export { LOCK_FILE };

export interface BuiltImage {
  image: ImageFacts;
  manifestFile: string;
  marketplaceFile: string;
  outputDir: string;
  plan: BuildPlan;
  /** What Packer reported (build host key, build key, staged mirror), for the pipeline checks of the VM boot test. */
  packer: BuildImageResult;
}

/** What a build touches outside its settings; tests replace them. */
export interface BuildDeps {
  lockFile: string;
  probes: HostProbes;
  stage: (recipe: BuildRecipe, dir: string, opts: { cacheDir: string; log: Logger }) => Promise<StagedArtifacts>;
  /** Keep the one-off build key here (the VM boot test proves it no longer logs in); default: deleted. */
  buildKeyDir?: string;
}

export const defaultDeps = (): BuildDeps => ({ lockFile: LOCK_FILE, probes: hostProbes, stage: stageArtifacts });

/** Settings that the profile does not use: refused when given as a flag, told when they come from elsewhere. */
function checkUnused(env: BuildEnv, log: Logger): void {
  if (env.profile !== 'test' || env.model === DEFAULT_BUILD_SETTINGS.model) return;
  const text = `the test profile always bakes the tiny test GGUF (${TEST_MODEL_FILE}): ${BUILD_VARS.model.name}=${env.model} is not used`;
  if (env.sources.model === 'flag')
    throw new UsageError(`${BUILD_VARS.model.flag} ${env.model}: ${text}`, 'leave --model out with --profile test');
  log.warn(`${text} (from ${env.sources.model === 'env' ? 'the environment' : env.file})`);
}

/** The recipe and the preflight: no download, no build. Throws the preflight's refusal, every problem at once. */
export async function prepareBuild(
  env: BuildEnv,
  log: Logger,
  deps: BuildDeps = defaultDeps(),
): Promise<{ recipe: BuildRecipe; checks: Check[] }> {
  checkUnused(env, log);
  const recipe = recipeFor(env, await readLock(deps.lockFile), deps.lockFile);
  const checks = await log.phase('preflight', () =>
    preflightChecks({ recipe, outputDir: env.resolved.outputDir, cache: env.resolved.cache }, deps.probes),
  );
  for (const c of checks.filter((c) => !c.blocking && c.status !== 'ok')) log.info(`preflight: ${c.name}: ${c.detail}`);
  const refusal = preflightError(env.profile, checks);
  if (refusal) throw refusal;
  return { recipe, checks };
}

function manifestJson(env: BuildEnv, image: ImageFacts, plan: BuildPlan, os: { id: string; release: string }): string {
  const manifest = {
    version: APPLIANCE_VERSION,
    profile: env.profile,
    size: image.virtualSize,
    file_size: image.fileSize,
    sha256: image.sha256,
    md5: image.md5,
    'os-id': os.id,
    'os-release': os.release,
    'os-arch': 'x86_64',
    plan,
  };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

export async function buildApplianceImage(
  env: BuildEnv,
  log: Logger,
  deps: BuildDeps = defaultDeps(),
): Promise<BuiltImage> {
  // The .env's cache setting is the cache of every package the build calls.
  process.env.SLM_COPILOT_CACHE = env.resolved.cache;
  const { recipe } = await prepareBuild(env, log, deps);
  const outputDir = path.resolve(env.resolved.outputDir);
  const packerOut = path.join(outputDir, 'packer');
  const bundleDir = path.join(outputDir, 'bundle');
  const mirrorDir = path.join(outputDir, 'mirror');
  for (const d of [packerOut, bundleDir]) await rm(d, { recursive: true, force: true });
  await mkdir(outputDir, { recursive: true });
  const hostMirror = recipe.hostMirror;
  if (env.profile === 'offline' && hostMirror !== undefined) {
    // before anything is staged: a file that does not match the mirror's manifest is refused by name
    await log.phase('verify the mirror against its manifest', () => verifyMirror(hostMirror, { log }));
  }
  const staged = await deps.stage(recipe, mirrorDir, { cacheDir: env.resolved.cache, log });
  const plan = finishPlan(recipe, staged);
  await log.phase('bundle the appliance', () => bundleAppliance(bundleDir, plan, log));
  const test = env.profile === 'test';
  const base = test ? await log.phase('Debian base image', () => ensureBaseImage({ log })) : undefined;
  const offline =
    env.profile === 'offline' && recipe.hostMirror ? await offlineBaseImage(recipe.hostMirror) : undefined;
  const production =
    env.profile === 'production'
      ? await log.phase('Ubuntu base image checksum', () => resolveBaseImageChecksum(deps.lockFile, log))
      : undefined;
  const built = await log.phase('packer build', () =>
    buildImage({
      profile: env.profile,
      bundleDir,
      applianceDir: path.join(bundleDir, 'appliance'),
      nodeRuntimeTarball: path.join(bundleDir, 'manifest.json'),
      outputDir: packerOut,
      sourceImage: base?.path ?? offline?.sourceImage ?? production?.url,
      sourceChecksum: offline?.sourceChecksum ?? production?.checksum,
      mirrorDir,
      // the base image boots the build VM; the install stage never reads it
      mirrorExclude: hostOnlyMirrorFile,
      ...(deps.buildKeyDir ? { buildKeyDir: deps.buildKeyDir } : {}),
      installCommand: `sh ${STAGED_BUNDLE}/install.sh && sync`,
      log,
    }),
  );
  const image = await log.phase('checksums', () => imageFacts(built.image));
  const os = test ? { id: 'Debian', release: '12' } : { id: 'Ubuntu', release: '24.04' };
  const manifestFile = path.join(outputDir, 'slm-copilot.manifest.json');
  await writeFile(manifestFile, manifestJson(env, image, plan, os));
  const marketplaceFile = path.join(outputDir, 'slm-copilot.marketplace.yaml');
  const yaml = renderMarketplaceYaml(image, {
    version: APPLIANCE_VERSION,
    osId: os.id,
    osRelease: os.release,
    imageUrl: `file://${image.file}`,
    contextSizeDefault: env.contextSize,
    createdAt: new Date(),
  });
  await writeFile(marketplaceFile, yaml);
  const mib = (image.fileSize / 1024 ** 2).toFixed(0);
  log.info(`image ${image.file} (${mib} MiB, sha256 ${image.sha256}); marketplace entry ${marketplaceFile}`);
  return { image, manifestFile, marketplaceFile, outputDir, plan, packer: built };
}

const SUMMARY = 'build the SLM-Copilot appliance image (QCOW2 + manifest + marketplace YAML)';

export const USAGE = `npm run build:image -- [options]          (bootstraps pnpm and the workspace first)
       pnpm turbo run build:image -- [options]   (the same, with pnpm)
       tsx --conditions=source scripts/src/build-image.ts [options]`;

export const DETAILS = `Settings come from the flags, then SLM_COPILOT_* environment variables, then the repository's .env
(\`pnpm run setup\` writes it: ${REPO_ENV_FILE}), then the defaults. Options go after "--" as shown:
without it npm or turbo take them for their own.

Profiles: one recipe — the same bundle, install stage and artifact mechanism (every artifact through the
mirror staged into the build VM at a fixed path, verified by sha256); they differ only in inputs:
  production  (default) Ubuntu 24.04 cloud image; LocalAI ${LOCALAI_VERSION} (llama-cpp backend) and llama-server;
              the model from artifacts.lock.json (the mirror first, then upstream). Needs KVM and the internet.
  offline     the same image with every input from --mirror (a directory; the Ubuntu cloud image and its
              SHA256SUMS, LocalAI, the model, …). Needs KVM and the npm registry.
  test        the Debian 12 base built here from Debian packages, under QEMU TCG (no KVM needed); llama-server;
              a stand-in local-ai that cannot serve (LocalAI cannot be downloaded here), so the image boots
              with the default engine and falls back to llama-server; always the tiny random-weight test GGUF
              (--model is refused). Needs the npm registry, Debian apt and root (for the base image).
llama-server in every profile: the runtime-dispatching build of llama.cpp from node-llama-cpp@${NODE_LLAMA_CPP_VERSION}
(npm registry); the Node runtime: ${NODE_RUNTIME.npmPackage}@${NODE_RUNTIME.version} (npm registry).

Before any download or build it checks what the profile needs (the lock entry, KVM, packer, qemu-img,
xorriso, the llama.cpp build tools, free disk for image + model + cache, RAM) and refuses with every
problem and its fix at once (exit 4).


Examples:
  npm run build:image -- --profile test
  npm run build:image -- --profile offline --mirror /srv/slm-mirror
  npm run build:image -- --help

Exit codes: 0 built, 2 a bad flag, 3 a bad setting in the environment or .env, 4 the preflight refused.`;

export function runBuildImageCli(argv: string[]): Promise<number> {
  return runCommand(
    { name: 'build-image', summary: SUMMARY, usage: USAGE, options: buildVarOptions(), details: DETAILS },
    buildVarOptionHelp(),
    argv,
    async ({ values, log }) => {
      const env = readBuildEnv({ file: REPO_ENV_FILE, flags: flagsFromValues(values) });
      await buildApplianceImage(env, log);
    },
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await runBuildImageCli(process.argv.slice(2));
}
