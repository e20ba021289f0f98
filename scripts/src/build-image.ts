/**
 * build-image: the appliance image (QCOW2 + manifest + marketplace YAML), one recipe for every profile:
 * settings (./build-env.ts) → recipe (./build-plan.ts, no network) → preflight (./preflight.ts: refuses
 * before any download or build) → staged artifacts (./stage.ts) → bundle → Packer (packages/rig/vm).
 * The cache of the settings is handed to every step explicitly: the build never sets process.env.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { APPLIANCE_VERSION } from '@slm-copilot/context-schema';
import type { BuildPlan } from '@slm-copilot/lifecycle';
import { readLock } from '@slm-copilot/model-fetch';
import { runCommand, UsageError, type Logger } from '@slm-copilot/task-kit';
import { buildImage, ensureBaseImage, type BuildImageResult } from '@slm-copilot/vm';
import { resolveBaseImageChecksum } from './base-image-pin.js';
import { BUILD_VARS, DEFAULT_BUILD_SETTINGS, readBuildEnv, REPO_ENV_FILE, type BuildEnv } from './build-env.js';
import { buildVarOptionHelp, buildVarOptions, flagsFromValues } from './build-flags.js';
import { BUILD_IMAGE_DETAILS, BUILD_IMAGE_SUMMARY, BUILD_IMAGE_USAGE } from './build-image-help.js';
import { finishPlan, recipeFor, TEST_MODEL_FILE, type BuildRecipe, type StagedArtifacts } from './build-plan.js';
import { bundleAppliance } from './bundle.js';
import { hostProbes, type HostProbes } from './host-probes.js';
import { LOCK_FILE } from './lock-file.js';
import { imageFacts, renderMarketplaceYaml, type ImageFacts } from './marketplace.js';
import { renderServiceTemplate } from './oneflow-template.js';
import { hostOnlyMirrorFile, offlineBaseImage } from './mirror-layout.js';
import { verifyMirror } from './mirror-manifest.js';
import { preflightChecks, preflightError, type Check } from './preflight.js';
import { stageArtifacts } from './stage.js';

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
  const text =
    `the test profile always bakes the tiny test GGUF (${TEST_MODEL_FILE}): ` +
    `${BUILD_VARS.model.name}=${env.model} is not used`;
  if (env.sources.model === 'flag')
    throw new UsageError(`${BUILD_VARS.model.flag} ${env.model}: ${text} (leave --model out with --profile test)`);
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

/** The OS the image is built on, per profile. */
const osOf = (env: BuildEnv) =>
  env.profile === 'test' ? { id: 'Debian', release: '12' } : { id: 'Ubuntu', release: '24.04' };

/** The build VM's boot disk and its checksum: the Debian base (test), the mirror's (offline), Ubuntu's (production). */
async function sourceImage(env: BuildEnv, recipe: BuildRecipe, deps: BuildDeps, log: Logger) {
  const cacheDir = path.join(env.resolved.cache, 'vm');
  if (env.profile === 'test') {
    const base = await log.phase('Debian base image', () => ensureBaseImage({ log, cacheDir }));
    return { sourceImage: base.path, sourceChecksum: undefined };
  }
  if (env.profile === 'offline' && recipe.hostMirror) {
    const offline = await offlineBaseImage(recipe.hostMirror);
    return { sourceImage: offline.sourceImage, sourceChecksum: offline.sourceChecksum };
  }
  if (env.profile !== 'production') return { sourceImage: undefined, sourceChecksum: undefined };
  const pin = await log.phase('Ubuntu base image checksum', () => resolveBaseImageChecksum(deps.lockFile, log));
  return { sourceImage: pin.url, sourceChecksum: pin.checksum };
}

/** The manifest, the marketplace entry and the OneFlow service template beside the image. */
async function writeOutputs(env: BuildEnv, image: ImageFacts, plan: BuildPlan, outputDir: string) {
  const version = APPLIANCE_VERSION;
  const os = osOf(env);
  const manifestFile = path.join(outputDir, 'slm-copilot.manifest.json');
  const manifest = {
    version,
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
  await writeFile(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
  const marketplaceFile = path.join(outputDir, 'slm-copilot.marketplace.yaml');
  const yaml = renderMarketplaceYaml(image, {
    version,
    osId: os.id,
    osRelease: os.release,
    imageUrl: `file://${image.file}`,
    contextSizeDefault: env.contextSize,
    createdAt: new Date(),
  });
  await writeFile(marketplaceFile, yaml);
  // the team service (OneFlow) with the same builder defaults; its template_id is set at import
  const oneflow = renderServiceTemplate({ defaults: { ONEAPP_COPILOT_CONTEXT_SIZE: env.contextSize } });
  await writeFile(path.join(outputDir, 'slm-copilot.oneflow.json'), oneflow);
  return { manifestFile, marketplaceFile };
}

export async function buildApplianceImage(
  env: BuildEnv,
  log: Logger,
  deps: BuildDeps = defaultDeps(),
): Promise<BuiltImage> {
  const { recipe } = await prepareBuild(env, log, deps);
  const cacheDir = env.resolved.cache;
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
  const staged = await deps.stage(recipe, mirrorDir, { cacheDir, log });
  const plan = finishPlan(recipe, staged);
  await log.phase('bundle the appliance', () => bundleAppliance(bundleDir, plan, log, { cacheDir }));
  const source = await sourceImage(env, recipe, deps, log);
  const built = await log.phase('packer build', () =>
    buildImage({
      profile: env.profile,
      bundleDir: bundleDir,
      applianceDir: path.join(bundleDir, 'appliance'),
      nodeRuntimeTarball: path.join(bundleDir, 'manifest.json'),
      outputDir: packerOut,
      ...source,
      mirrorDir,
      // the base image boots the build VM; the install stage never reads it
      mirrorExclude: hostOnlyMirrorFile,
      ...(deps.buildKeyDir ? { buildKeyDir: deps.buildKeyDir } : {}),
      installCommand: `sh ${STAGED_BUNDLE}/install.sh && sync`,
      cacheDir,
      log,
    }),
  );
  const image = await log.phase('checksums', () => imageFacts(built.image));
  const { manifestFile, marketplaceFile } = await writeOutputs(env, image, plan, outputDir);
  const mib = (image.fileSize / 1024 ** 2).toFixed(0);
  log.info(`image ${image.file} (${mib} MiB, sha256 ${image.sha256}); marketplace entry ${marketplaceFile}`);
  return { image, manifestFile, marketplaceFile, outputDir, plan, packer: built };
}

export function runBuildImageCli(argv: string[]): Promise<number> {
  const options = { ...buildVarOptions(), json: { type: 'boolean', default: false } } as const;
  const spec = { name: 'build-image', summary: BUILD_IMAGE_SUMMARY, usage: BUILD_IMAGE_USAGE, options };
  const help = { ...buildVarOptionHelp(), json: 'print the built image (file, sha256, manifest) as JSON on stdout' };
  return runCommand({ ...spec, details: BUILD_IMAGE_DETAILS }, help, argv, async ({ values, log }) => {
    const env = readBuildEnv({ file: REPO_ENV_FILE, flags: flagsFromValues(values) });
    const built = await buildApplianceImage(env, log);
    if (values.json) {
      const { image, manifestFile, marketplaceFile, outputDir } = built;
      const out = { image: image.file, sha256: image.sha256, md5: image.md5, manifestFile, marketplaceFile, outputDir };
      process.stdout.write(`${JSON.stringify(out)}\n`);
    }
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await runBuildImageCli(process.argv.slice(2));
}
