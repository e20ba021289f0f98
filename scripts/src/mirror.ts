/**
 * `mirror`: on a machine with the internet, fills a directory with every input of a production image build
 * (the layout: ./mirror-layout.ts; the fetchers: ./mirror-inputs.ts) and writes mirror-manifest.json;
 * `build:image --profile offline` then takes everything from it (verifyMirror first). Downloads are verified
 * against an upstream checksum wherever one exists; the manifest records which.
 */
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOCALAI_VERSION, localAiRelease } from '@slm-copilot/localai-install';
import { CATALOG, DEFAULT_MODEL_ID } from '@slm-copilot/model-fetch';
import { runCommand, UsageError, type Logger } from '@slm-copilot/task-kit';
import { NODE_LLAMA_CPP_VERSION } from '@slm-copilot/testbed';
import { readBaseImagePin } from './base-image-pin.js';
import { APT_PACKAGES } from './build-plan.js';
import {
  checkBackendSource,
  DEFAULT_UPSTREAMS,
  debs,
  localai,
  lockedModel,
  model,
  npmTarball,
  packerPlugin,
  ubuntu,
  type FillMirrorOptions,
} from './mirror-inputs.js';
import { MIRROR_FILES } from './mirror-layout.js';
import { MIRROR_MANIFEST, verifyMirror, writeMirrorManifest, type MirrorFile } from './mirror-manifest.js';
import { NODE_RUNTIME } from './node-runtime.js';

export type { FillMirrorOptions, MirrorUpstreams } from './mirror-inputs.js';

/** Refuses bad inputs before anything is written: the release date, the model's lock entry, the backend's source. */
async function checkInputs(o: FillMirrorOptions, up: typeof DEFAULT_UPSTREAMS) {
  if (!/^20\d{6}$/.test(o.ubuntuRelease)) {
    throw new UsageError(
      `--ubuntu-release "${o.ubuntuRelease}" is not a release date YYYYMMDD ` +
        `(a release-YYYYMMDD directory of ${up.ubuntuCloudImages}/)`,
    );
  }
  const locked = await lockedModel(o);
  await checkBackendSource(o);
  return locked;
}

/** The npm tarballs: the Node runtime (checked against its pin) and llama.cpp's source in node-llama-cpp. */
async function npmTarballs(o: FillMirrorOptions, up: typeof DEFAULT_UPSTREAMS): Promise<MirrorFile[]> {
  const { npmPackage, version, integrity } = NODE_RUNTIME;
  return [
    await npmTarball(o, up, npmPackage, version, MIRROR_FILES.nodeRuntime, o.nodeIntegrity ?? integrity),
    await npmTarball(o, up, 'node-llama-cpp', NODE_LLAMA_CPP_VERSION, MIRROR_FILES.llamaSource),
  ];
}

/** Fills `dir` (idempotent: verified files already there are kept) and writes its manifest last. */
export async function fillMirror(o: FillMirrorOptions): Promise<{ manifest: string; files: MirrorFile[] }> {
  const up = { ...DEFAULT_UPSTREAMS, ...o.upstreams };
  const locked = await checkInputs(o, up);
  await mkdir(o.dir, { recursive: true });
  await rm(path.join(o.dir, MIRROR_MANIFEST), { force: true }); // a half-filled mirror must not look complete
  const files: MirrorFile[] = [];
  files.push(...(await o.log.phase('Ubuntu cloud image', () => ubuntu(o, up))));
  files.push(...(await o.log.phase(`LocalAI ${LOCALAI_VERSION}`, () => localai(o, up))));
  files.push(await o.log.phase('model', () => model(o, locked)));
  files.push(...(await npmTarballs(o, up)));
  const plugin = o.packerPluginVersion;
  if (plugin) files.push(...(await o.log.phase('Packer QEMU plugin', () => packerPlugin(o, up, plugin))));
  else o.log.info('Packer QEMU plugin: not mirrored (no --packer-plugin-version; Packer 1.6.x has it built in)');
  files.push(...(await o.log.phase('apt packages', () => debs(o, up))));
  const inputs = {
    ubuntuRelease: `release-${o.ubuntuRelease}`,
    localai: LOCALAI_VERSION,
    model: { id: o.model ?? DEFAULT_MODEL_ID, lock: path.basename(o.lockPath) },
    nodeRuntime: `${NODE_RUNTIME.npmPackage}@${NODE_RUNTIME.version}`,
    llamaCppSource: `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`,
    packerPlugin: plugin ?? null,
    aptPackages: [...(o.aptPackages ?? APT_PACKAGES)],
  };
  const manifest = await writeMirrorManifest(o.dir, { version: 1, createdAt: new Date().toISOString(), inputs, files });
  const gib = (files.reduce((n, f) => n + f.size, 0) / 1024 ** 3).toFixed(2);
  o.log.info(`mirror ${o.dir}: ${files.length} files, ${gib} GiB; manifest ${manifest}`);
  return { manifest, files };
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const SPEC = {
  name: 'mirror',
  summary: 'fill a directory with every input of an offline (production) image build',
  usage:
    'pnpm --filter @slm-copilot/scripts mirror -- --dir DIR [--ubuntu-release YYYYMMDD] [options]\n' +
    '       pnpm --filter @slm-copilot/scripts mirror -- --dir DIR --verify',
  options: {
    dir: { type: 'string' },
    'ubuntu-release': { type: 'string' },
    model: { type: 'string' },
    lock: { type: 'string' },
    'backend-archive': { type: 'string' },
    'packer-plugin-version': { type: 'string' },
    verify: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
  details: `Needs the internet (cloud-images.ubuntu.com, github.com, huggingface.co, the npm registry,
archive.ubuntu.com), apt-get and the ubuntu-keyring package. About 15 GiB. Then, on the build host:
  npm run build:image -- --profile offline --mirror DIR
The LocalAI backend (${MIRROR_FILES.backendArchive}) is a \`docker save\`-format tarball of
${localAiRelease(LOCALAI_VERSION).backendImage}: made with skopeo when it is installed, else pass one made
elsewhere (skopeo copy docker://IMAGE docker-archive:FILE:IMAGE, or docker pull + docker save -o FILE IMAGE).
Without either the command refuses before it writes anything: nothing else here can fetch an OCI image.

Examples:
  pnpm --filter @slm-copilot/scripts mirror -- --dir /srv/slm-mirror
  pnpm --filter @slm-copilot/scripts mirror -- --dir /srv/slm-mirror --backend-archive backend.tar
  pnpm --filter @slm-copilot/scripts mirror -- --dir /srv/slm-mirror --verify --json

Exit codes: 0 filled (or verified), 2 a bad flag, 3 no lock entry for the model or the base image,
4 skopeo missing, 5 a download failed, 6 a file does not match its checksum or the manifest.`,
} as const;

const OPTION_HELP = {
  dir: 'the mirror directory (created)',
  'ubuntu-release':
    'Ubuntu noble cloud-image release date YYYYMMDD (default: the pin of artifacts.lock.json, baseImage.production)',
  model: `catalog id / lock entry of the model (default ${DEFAULT_MODEL_ID})`,
  lock: "artifacts.lock.json (default the repository's)",
  'backend-archive': 'an existing docker-save tarball of the LocalAI llama-cpp backend image',
  'packer-plugin-version': 'also mirror this Packer QEMU plugin release (Packer >= 1.7 only)',
  verify: 'only check DIR against its mirror-manifest.json',
  json: 'print the result as one JSON object on stdout',
};

const str = (values: Record<string, unknown>, name: string) => values[name] as string | undefined;

async function fill(values: Record<string, unknown>, dir: string, log: Logger) {
  const lockPath = path.resolve(str(values, 'lock') ?? path.join(REPO_ROOT, 'artifacts.lock.json'));
  const id = str(values, 'model');
  if (id !== undefined && !CATALOG.some((e) => e.id === id))
    throw new UsageError(`--model "${id}": expected a catalog model id: ${CATALOG.map((e) => e.id).join(', ')}`);
  // the same dated release the production build pins, unless asked otherwise
  const release = str(values, 'ubuntu-release') ?? (await readBaseImagePin(lockPath)).release.slice('release-'.length);
  const { manifest, files } = await fillMirror({
    dir,
    ubuntuRelease: release,
    lockPath,
    model: id,
    backendArchive: str(values, 'backend-archive'),
    packerPluginVersion: str(values, 'packer-plugin-version'),
    log,
  });
  return { dir, manifest, files: files.length, bytes: files.reduce((n, f) => n + f.size, 0) };
}

export function main(argv: string[]): Promise<number> {
  return runCommand(SPEC, OPTION_HELP, argv, async ({ values, log }) => {
    const given = str(values, 'dir');
    if (!given) throw new UsageError('--dir is required');
    const dir = path.resolve(given);
    let result: object;
    if (values.verify) {
      const r = await verifyMirror(dir, { log });
      log.info(`mirror ${dir}: ${r.files} files match ${MIRROR_MANIFEST}`);
      result = { dir, manifest: path.join(dir, MIRROR_MANIFEST), files: r.files, bytes: r.bytes, verified: true };
    } else result = await fill(values, dir, log);
    if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
