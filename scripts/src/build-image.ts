import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { BuildPlan } from '@slm-copilot/lifecycle';
import { findModel, lockedArtifact } from '@slm-copilot/model-fetch';
import { createLogger, ExitCode, formatError, isTaskError, TaskError, type Logger } from '@slm-copilot/task-kit';
import { ensureLlamaBuild, ensureTinyModel } from '@slm-copilot/testbed';
import { buildImage, ensureBaseImage } from '@slm-copilot/vm';
import { readBuildEnv, REPO_ENV_FILE, type BuildEnv } from './build-env.js';
import { bundleAppliance, repoRoot } from './bundle.js';
import { imageFacts, renderMarketplaceYaml, type ImageFacts } from './marketplace.js';

export const APPLIANCE_VERSION = '0.1.0';
/** Where the Packer template uploads the bundle inside the build VM (packer var staging_dir + /bundle). */
const STAGED_BUNDLE = '/var/tmp/slm-copilot-build/bundle';
const TEST_MODEL_FILE = 'slm-copilot-test-tiny-Q4_K_M.gguf';

const HELP = `build-image — build the SLM-Copilot appliance image (QCOW2 + manifest + marketplace YAML)

Usage: pnpm turbo build:image            (settings from .env: run \`pnpm run setup\` first)
       npm run build:image               (on a machine without pnpm: installs it first)
       pnpm --filter @slm-copilot/scripts build:image -- [options]

Profiles:
  production  (default) Ubuntu 24.04 cloud image (checked against Ubuntu's SHA256SUMS), LocalAI ${'v4.9.0'}
              with its llama-cpp backend, Devstral Small 2 24B Q4_K_M (sha256 from the model hub's LFS
              metadata, recorded in artifacts.lock.json). Needs the internet and KVM.
  offline     the same, but every artifact (base image, engine, model, runtime) from --mirror only.
  test        offline, from a Debian 12 base image built from Debian packages, llama-server built from
              source (AVX2-only, runs under QEMU TCG) and a tiny random-weight GGUF. Runs on machines
              without KVM or internet; it is what \`pnpm test:e2e\` boots.

Options (each also settable in .env as SLM_COPILOT_*; flags win):
  --profile production|offline|test
  --model ID          model-fetch catalog id (default devstral-small-2)
  --engine localai|llama-server
  --context-size N    default ONEAPP_COPILOT_CONTEXT_SIZE in the marketplace template
  --output DIR        where the QCOW2, manifest and marketplace YAML go (default ./output)
  --mirror DIR|URL    artifacts as <mirror>/<artifact-name>, tried before upstream
  -h, --help

Each phase prints its duration and has its own timeout.
`;

export interface BuiltImage {
  image: ImageFacts;
  manifestFile: string;
  marketplaceFile: string;
  outputDir: string;
}

/** The build plan and bundle for a profile: what the install stage inside the VM gets. */
async function planFor(env: BuildEnv, bundleDir: string, log: Logger): Promise<BuildPlan> {
  if (env.profile === 'test') {
    const llama = await log.phase('llama-server (AVX2-only, for TCG)', () => ensureLlamaBuild({ variant: 'avx2' }));
    const model = await log.phase('tiny test model', () => ensureTinyModel({ llama }));
    const mirror = path.join(bundleDir, 'mirror');
    await mkdir(mirror, { recursive: true });
    await copyFile(model.path, path.join(mirror, TEST_MODEL_FILE));
    await copyFile(llama.llamaServer, path.join(mirror, 'llama-server'));
    return {
      profile: 'test',
      engineDefault: 'llama-server',
      mirrors: [`${STAGED_BUNDLE}/mirror`],
      upstream: false,
      model: { file: TEST_MODEL_FILE, sha256: model.sha256, size: model.bytes, url: null },
      localai: false,
      llamaServer: `${STAGED_BUNDLE}/mirror/llama-server`,
      aptPackages: ['nginx', 'openssl', 'libgomp1'],
    };
  }
  const entry = findModel(env.model);
  if (!entry) throw new TaskError(`unknown model "${env.model}" (SLM_COPILOT_MODEL)`, { exitCode: ExitCode.usage, hint: 'model-fetch catalog' });
  const locked = await lockedArtifact(path.join(repoRoot, 'artifacts.lock.json'), entry.id);
  if (!locked) {
    throw new TaskError(`the model ${entry.id} has no verified sha256 in artifacts.lock.json`, {
      exitCode: ExitCode.integrity,
      hint: `resolve it from the model hub's LFS metadata first: model-fetch resolve --model ${entry.id} --lock artifacts.lock.json (needs the internet)`,
    });
  }
  return {
    profile: env.profile,
    engineDefault: env.engine,
    mirrors: env.mirror ? [env.mirror] : [],
    upstream: env.profile === 'production',
    model: { file: path.basename(entry.file), sha256: locked.sha256, size: locked.size, url: locked.url },
    localai: true,
    llamaServer: null,
    aptPackages: ['nginx', 'openssl', 'certbot', 'libgomp1'],
  };
}

export async function buildApplianceImage(env: BuildEnv, log: Logger): Promise<BuiltImage> {
  const outputDir = path.resolve(env.resolved.outputDir);
  const packerOut = path.join(outputDir, 'packer');
  const bundleDir = path.join(outputDir, 'bundle');
  await rm(packerOut, { recursive: true, force: true });
  await rm(bundleDir, { recursive: true, force: true });
  await mkdir(outputDir, { recursive: true });
  const plan = await planFor(env, bundleDir, log);
  await log.phase('bundle the appliance', () => bundleAppliance(bundleDir, plan, log));
  const base = env.profile === 'test' ? await log.phase('Debian base image', () => ensureBaseImage({ log })) : undefined;
  const built = await log.phase('packer build', () =>
    buildImage({
      profile: env.profile === 'test' ? 'test' : 'production',
      bundleDir,
      applianceDir: path.join(bundleDir, 'appliance'),
      nodeRuntimeTarball: path.join(bundleDir, 'manifest.json'),
      outputDir: packerOut,
      sourceImage: base?.path,
      installCommand: `sh ${STAGED_BUNDLE}/install.sh && sync`,
      log,
    }),
  );
  const image = await log.phase('checksums', () => imageFacts(built.image));
  const manifestFile = path.join(outputDir, 'slm-copilot.manifest.json');
  await writeFile(
    manifestFile,
    `${JSON.stringify({ version: APPLIANCE_VERSION, profile: env.profile, size: image.virtualSize, file_size: image.fileSize, sha256: image.sha256, md5: image.md5, 'os-id': env.profile === 'test' ? 'Debian' : 'Ubuntu', 'os-release': env.profile === 'test' ? '12' : '24.04', 'os-arch': 'x86_64', plan }, null, 2)}\n`,
  );
  const marketplaceFile = path.join(outputDir, 'slm-copilot.marketplace.yaml');
  await writeFile(
    marketplaceFile,
    renderMarketplaceYaml(image, {
      version: APPLIANCE_VERSION,
      osId: env.profile === 'test' ? 'Debian' : 'Ubuntu',
      osRelease: env.profile === 'test' ? '12' : '24.04',
      imageUrl: `file://${image.file}`,
      contextSizeDefault: env.contextSize,
      createdAt: new Date(),
    }),
  );
  log.info(`image ${image.file} (${(image.fileSize / 1024 ** 2).toFixed(0)} MiB, sha256 ${image.sha256}); marketplace entry ${marketplaceFile}`);
  return { image, manifestFile, marketplaceFile, outputDir };
}

async function main(argv: string[]): Promise<number> {
  const log = createLogger();
  try {
    const { values } = parseArgs({
      args: argv.filter((a) => a !== '--'),
      options: {
        profile: { type: 'string' },
        model: { type: 'string' },
        engine: { type: 'string' },
        'context-size': { type: 'string' },
        output: { type: 'string' },
        mirror: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    const env = readBuildEnv({
      file: REPO_ENV_FILE,
      flags: { profile: values.profile, model: values.model, engine: values.engine, contextSize: values['context-size'], outputDir: values.output, mirror: values.mirror },
    });
    await buildApplianceImage(env, log);
    return 0;
  } catch (error) {
    log.error(formatError(error));
    return isTaskError(error) ? error.exitCode : 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  process.exitCode = await main(process.argv.slice(2));
}
