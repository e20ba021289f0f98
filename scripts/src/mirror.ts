/**
 * `mirror`: on a machine with the internet, fills a directory with every input of a production image build
 * (`<dir>/<artifact-name>`, .debs under `apt/`) and writes mirror-manifest.json; `build:image --profile offline`
 * then takes everything from it (verifyMirror first). Downloads are verified against an upstream checksum
 * wherever one exists; the manifest records which.
 */
import { copyFile, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findModel, DEFAULT_MODEL_ID, fetchModel, lockedArtifact } from '@slm-copilot/model-fetch';
import { localAiRelease, LOCALAI_VERSION as LOCALAI_PIN } from '@slm-copilot/localai-install';
import {
  ExitCode,
  runCommand,
  sha256File,
  sh,
  TaskError,
  UsageError,
  writeFileAtomic,
  type Logger,
} from '@slm-copilot/task-kit';
import { NODE_LLAMA_CPP_VERSION } from '@slm-copilot/testbed';
import { readBaseImagePin } from './base-image-pin.js';
import { APT_PACKAGES } from './build-plan.js';
import { downloadDebs, ubuntuNobleSources } from './mirror-apt.js';
import { downloadSri, fetchText, npmIntegrity, npmTarballUrl, sumFor } from './mirror-fetch.js';
import {
  MIRROR_MANIFEST,
  readMirrorManifest,
  verifyMirror,
  writeMirrorManifest,
  type MirrorFile,
} from './mirror-manifest.js';
import { NODE_RUNTIME } from './node-runtime.js';

export {
  verifyMirror,
  readMirrorManifest,
  MIRROR_MANIFEST,
  type MirrorFile,
  type MirrorManifest,
} from './mirror-manifest.js';

/** LocalAI's pinned release and asset names, as the install stage expects them. */
export const LOCALAI_VERSION = LOCALAI_PIN;
const localAi = (v: string) => {
  const r = localAiRelease(v);
  return { binary: r.binaryAsset, checksums: r.checksumsAsset, backendImage: r.backendImage };
};

/** File names inside a mirror. */
export const MIRROR_FILES = {
  // the name inside Ubuntu's dated release directories (release-YYYYMMDD/SHA256SUMS lists it so)
  ubuntuImage: 'ubuntu-24.04-server-cloudimg-amd64.img',
  ubuntuSums: 'noble-server-cloudimg-SHA256SUMS',
  localaiBinary: localAi(LOCALAI_VERSION).binary,
  localaiChecksums: localAi(LOCALAI_VERSION).checksums,
  /** A `docker save`-format tarball (go-containerregistry `tarball`), what LocalAI's `ocifile://` reads. */
  backendArchive: `local-ai-backends-${LOCALAI_VERSION}-cpu-llama-cpp.tar`,
  nodeRuntime: `${NODE_RUNTIME.npmPackage}-${NODE_RUNTIME.version}.tgz`,
  llamaSource: `node-llama-cpp-${NODE_LLAMA_CPP_VERSION}.tgz`,
  aptDir: 'apt',
} as const;

/** Files only the host uses (the boot disk, Packer's plugin): left off the disk staged into the build VM. */
export function hostOnlyMirrorFile(relativePath: string): boolean {
  return (
    relativePath === MIRROR_FILES.ubuntuImage ||
    relativePath === MIRROR_FILES.ubuntuSums ||
    relativePath.startsWith('packer-plugin-')
  );
}

/**
 * The offline build's base image: the mirror's Ubuntu cloud image and its sha256 from the mirrored
 * SHA256SUMS (Packer's iso_url + iso_checksum). Call after verifyMirror.
 */
export async function offlineBaseImage(
  dir: string,
): Promise<{ sourceImage: string; sourceChecksum: string; release: unknown }> {
  const sums = await readFile(path.join(dir, MIRROR_FILES.ubuntuSums), 'utf8').catch(() => {
    throw new TaskError(`mirror ${dir}: ${MIRROR_FILES.ubuntuSums} is missing`, { exitCode: ExitCode.integrity });
  });
  const sha = sumFor(sums, MIRROR_FILES.ubuntuImage);
  if (!sha)
    throw new TaskError(`mirror ${dir}: ${MIRROR_FILES.ubuntuSums} lists no ${MIRROR_FILES.ubuntuImage}`, {
      exitCode: ExitCode.integrity,
    });
  const { inputs } = await readMirrorManifest(dir);
  return {
    sourceImage: path.join(dir, MIRROR_FILES.ubuntuImage),
    sourceChecksum: `sha256:${sha}`,
    release: inputs.ubuntuRelease,
  };
}

export interface MirrorUpstreams {
  /** Ubuntu's dated cloud-image releases of noble. */
  ubuntuCloudImages: string;
  github: string;
  npmRegistry: string;
  hashicorpReleases: string;
  ubuntuArchive: string;
  ubuntuSecurity: string;
}

export const DEFAULT_UPSTREAMS: MirrorUpstreams = {
  ubuntuCloudImages: 'https://cloud-images.ubuntu.com/releases/noble',
  github: 'https://github.com',
  npmRegistry: process.env.npm_config_registry || 'https://registry.npmjs.org',
  hashicorpReleases: 'https://releases.hashicorp.com',
  ubuntuArchive: 'http://archive.ubuntu.com/ubuntu',
  ubuntuSecurity: 'http://security.ubuntu.com/ubuntu',
};

export interface FillMirrorOptions {
  dir: string;
  /** Ubuntu cloud-image release date `YYYYMMDD` (a `release-YYYYMMDD` directory, never `current`). */
  ubuntuRelease: string;
  /** artifacts.lock.json holding the model's entry. */
  lockPath: string;
  /** Catalog id (= lock entry name) of the model (default devstral-small-2). */
  model?: string;
  /** An existing `docker save`-format tarball of the backend image; else skopeo makes one (see HELP). */
  backendArchive?: string;
  /** Packer QEMU plugin release to mirror (Packer >= 1.7 needs it; 1.6.6 has the builder built in). */
  packerPluginVersion?: string;
  aptPackages?: readonly string[];
  /** sources.list lines for the .debs (default Ubuntu noble main+universe, signed by ubuntu-keyring). */
  aptSources?: readonly string[];
  upstreams?: Partial<MirrorUpstreams>;
  /** The Node runtime's sha512 SRI (default the pin in node-runtime.ts; tests pass their fake's). */
  nodeIntegrity?: string;
  log: Logger;
}

async function fileSize(file: string): Promise<number> {
  return (await stat(file)).size;
}

/** A file verified against a known sha256 (resumable: fetchModel), recorded in the manifest. */
async function fetchChecked(
  dir: string,
  name: string,
  url: string,
  sha256: string,
  checksumSource: string,
  log: Logger,
  size?: number,
): Promise<MirrorFile> {
  await fetchModel({ urls: [url], sha256, size, dest: path.join(dir, name), manifest: false, log, progress: 'none' });
  return { name, size: await fileSize(path.join(dir, name)), sha256, checksumSource, url };
}

async function ubuntu(o: FillMirrorOptions, up: MirrorUpstreams): Promise<MirrorFile[]> {
  if (!/^20\d{6}$/.test(o.ubuntuRelease)) {
    throw new UsageError(
      `--ubuntu-release "${o.ubuntuRelease}" is not a release date YYYYMMDD`,
      `pick a directory from ${up.ubuntuCloudImages}/ (release-YYYYMMDD)`,
    );
  }
  const base = `${up.ubuntuCloudImages}/release-${o.ubuntuRelease}`;
  const sums = await fetchText(
    `${base}/SHA256SUMS`,
    `the SHA256SUMS of Ubuntu noble release-${o.ubuntuRelease} (--ubuntu-release)`,
  );
  const sha = sumFor(sums, MIRROR_FILES.ubuntuImage);
  if (!sha)
    throw new TaskError(`${base}/SHA256SUMS lists no ${MIRROR_FILES.ubuntuImage}`, { exitCode: ExitCode.integrity });
  await writeFileAtomic(path.join(o.dir, MIRROR_FILES.ubuntuSums), sums);
  const sumsFile: MirrorFile = {
    name: MIRROR_FILES.ubuntuSums,
    size: Buffer.byteLength(sums),
    sha256: await sha256File(path.join(o.dir, MIRROR_FILES.ubuntuSums)),
    checksumSource: 'computed when mirrored (SHA256SUMS.gpg not checked: no Ubuntu cloud-image key here)',
    url: `${base}/SHA256SUMS`,
  };
  const image = await fetchChecked(
    o.dir,
    MIRROR_FILES.ubuntuImage,
    `${base}/${MIRROR_FILES.ubuntuImage}`,
    sha,
    `${base}/SHA256SUMS`,
    o.log,
  );
  return [sumsFile, image];
}

async function localai(o: FillMirrorOptions, up: MirrorUpstreams): Promise<MirrorFile[]> {
  const rel = localAi(LOCALAI_VERSION);
  // the release's own base URL, with the GitHub origin swapped when a mirror of it is given (tests: the fake)
  const base = localAiRelease(LOCALAI_VERSION).releaseBaseUrl.replace(/^https:\/\/github\.com/, up.github);
  const sums = await fetchText(`${base}/${rel.checksums}`, `LocalAI ${LOCALAI_VERSION}'s checksums file`);
  const sha = sumFor(sums, rel.binary);
  if (!sha) throw new TaskError(`${base}/${rel.checksums} lists no ${rel.binary}`, { exitCode: ExitCode.integrity });
  await writeFileAtomic(path.join(o.dir, rel.checksums), sums);
  const files: MirrorFile[] = [
    {
      name: rel.checksums,
      size: Buffer.byteLength(sums),
      sha256: await sha256File(path.join(o.dir, rel.checksums)),
      checksumSource: 'computed when mirrored (the release publishes no checksum of its checksums file)',
      url: `${base}/${rel.checksums}`,
    },
    await fetchChecked(o.dir, rel.binary, `${base}/${rel.binary}`, sha, `${base}/${rel.checksums}`, o.log),
  ];
  files.push(await backendArchive(o, rel.backendImage));
  return files;
}

/** The llama-cpp backend image as a `docker save` tarball: copied from --backend-archive, else made by skopeo. */
async function backendArchive(o: FillMirrorOptions, image: string): Promise<MirrorFile> {
  const dest = path.join(o.dir, MIRROR_FILES.backendArchive);
  let how: string;
  if (o.backendArchive) {
    await copyFile(o.backendArchive, `${dest}.partial`);
    how = `copied from --backend-archive ${o.backendArchive}`;
  } else {
    if ((await sh({ nothrow: true })`command -v skopeo`).exitCode !== 0) {
      throw new TaskError(
        `cannot make ${MIRROR_FILES.backendArchive}: skopeo is not installed and no --backend-archive was given`,
        {
          exitCode: ExitCode.environment,
          hint:
            `apt-get install skopeo, or make it elsewhere: skopeo copy docker://${image} ` +
            `docker-archive:${MIRROR_FILES.backendArchive}:${image} (or docker pull + docker save -o), then pass --backend-archive FILE`,
        },
      );
    }
    await rm(`${dest}.partial`, { force: true });
    const [from, to] = [`docker://${image}`, `docker-archive:${dest}.partial:${image}`];
    await o.log.phase(
      `skopeo copy ${image}`,
      () => sh`skopeo copy --override-os linux --override-arch amd64 ${from} ${to}`,
    );
    const digest = (
      await sh({ nothrow: true })`skopeo inspect --format ${'{{.Digest}}'} ${`docker://${image}`}`
    ).stdout.trim();
    how = `made by skopeo from ${image}${digest ? ` (registry digest ${digest})` : ''}`;
  }
  await rename(`${dest}.partial`, dest);
  return {
    name: MIRROR_FILES.backendArchive,
    size: await fileSize(dest),
    sha256: await sha256File(dest),
    checksumSource: `computed when mirrored; ${how}`,
  };
}

async function model(o: FillMirrorOptions): Promise<MirrorFile> {
  const id = o.model ?? DEFAULT_MODEL_ID;
  const entry = findModel(id);
  const locked = await lockedArtifact(o.lockPath, id);
  const name = path.basename(entry.file);
  return fetchChecked(
    o.dir,
    name,
    locked.url,
    locked.sha256,
    `${path.basename(o.lockPath)} "${id}": ${locked.checksumSource}`,
    o.log,
    locked.size,
  );
}

async function npmTarball(
  o: FillMirrorOptions,
  up: MirrorUpstreams,
  pkg: string,
  version: string,
  name: string,
  pinned?: string,
): Promise<MirrorFile> {
  const published = await npmIntegrity(up.npmRegistry, pkg, version);
  if (pinned && published !== pinned) {
    throw new TaskError(`the registry's integrity of ${pkg}@${version} (${published}) is not the pinned ${pinned}`, {
      exitCode: ExitCode.integrity,
    });
  }
  const url = npmTarballUrl(up.npmRegistry, pkg, version);
  const { sha256, size } = await o.log.phase(`npm ${pkg}@${version}`, () =>
    downloadSri(url, path.join(o.dir, name), published),
  );
  return {
    name,
    size,
    sha256,
    checksumSource: `npm registry dist.integrity ${published}${pinned ? ' (= the pin in the repository)' : ' (read when mirrored)'}`,
    url,
  };
}

/** Packer's QEMU plugin release zip + its SHA256SUMS (names as releases.hashicorp.com lists them; unverified here). */
async function packerPlugin(o: FillMirrorOptions, up: MirrorUpstreams, version: string): Promise<MirrorFile[]> {
  const v = version.replace(/^v/, '');
  const base = `${up.hashicorpReleases}/packer-plugin-qemu/${v}`;
  const sumsName = `packer-plugin-qemu_${v}_SHA256SUMS`;
  const zip = `packer-plugin-qemu_${v}_x5.0_linux_amd64.zip`;
  const sums = await fetchText(`${base}/${sumsName}`, `the Packer QEMU plugin ${v} checksums`);
  const sha = sumFor(sums, zip);
  if (!sha) throw new TaskError(`${base}/${sumsName} lists no ${zip}`, { exitCode: ExitCode.integrity });
  return [await fetchChecked(o.dir, `packer-plugin-qemu/${zip}`, `${base}/${zip}`, sha, `${base}/${sumsName}`, o.log)];
}

async function debs(o: FillMirrorOptions, up: MirrorUpstreams): Promise<MirrorFile[]> {
  const sources = o.aptSources ?? ubuntuNobleSources(up.ubuntuArchive, up.ubuntuSecurity);
  const dest = path.join(o.dir, MIRROR_FILES.aptDir);
  const names = await downloadDebs({ packages: o.aptPackages ?? APT_PACKAGES, dest, sources, log: o.log });
  const out: MirrorFile[] = [];
  for (const n of names) {
    const f = path.join(dest, n);
    const checksumSource = `apt (checked against the signed Packages index of: ${sources.join(' | ')})`;
    out.push({
      name: `${MIRROR_FILES.aptDir}/${n}`,
      size: await fileSize(f),
      sha256: await sha256File(f),
      checksumSource,
    });
  }
  return out;
}

/** Fills `dir` (idempotent: verified files already there are kept) and writes its manifest last. */
export async function fillMirror(o: FillMirrorOptions): Promise<{ manifest: string; files: MirrorFile[] }> {
  const up = { ...DEFAULT_UPSTREAMS, ...o.upstreams };
  await mkdir(o.dir, { recursive: true });
  await rm(path.join(o.dir, MIRROR_MANIFEST), { force: true }); // a half-filled mirror must not look complete
  const files: MirrorFile[] = [];
  files.push(...(await o.log.phase('Ubuntu cloud image', () => ubuntu(o, up))));
  files.push(...(await o.log.phase(`LocalAI ${LOCALAI_VERSION}`, () => localai(o, up))));
  files.push(await o.log.phase('model', () => model(o)));
  files.push(
    await npmTarball(
      o,
      up,
      NODE_RUNTIME.npmPackage,
      NODE_RUNTIME.version,
      MIRROR_FILES.nodeRuntime,
      o.nodeIntegrity ?? NODE_RUNTIME.integrity,
    ),
  );
  files.push(await npmTarball(o, up, 'node-llama-cpp', NODE_LLAMA_CPP_VERSION, MIRROR_FILES.llamaSource));
  if (o.packerPluginVersion)
    files.push(...(await o.log.phase('Packer QEMU plugin', () => packerPlugin(o, up, o.packerPluginVersion!))));
  else
    o.log.info(
      'Packer QEMU plugin: not mirrored (no --packer-plugin-version; Packer 1.6.x has the QEMU builder built in)',
    );
  files.push(...(await o.log.phase('apt packages', () => debs(o, up))));
  const inputs = {
    ubuntuRelease: `release-${o.ubuntuRelease}`,
    localai: LOCALAI_VERSION,
    model: { id: o.model ?? DEFAULT_MODEL_ID, lock: path.basename(o.lockPath) },
    nodeRuntime: `${NODE_RUNTIME.npmPackage}@${NODE_RUNTIME.version}`,
    llamaCppSource: `node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`,
    packerPlugin: o.packerPluginVersion ?? null,
    aptPackages: [...(o.aptPackages ?? APT_PACKAGES)],
  };
  const manifest = await writeMirrorManifest(o.dir, { version: 1, createdAt: new Date().toISOString(), inputs, files });
  o.log.info(
    `mirror ${o.dir}: ${files.length} files, ${(files.reduce((n, f) => n + f.size, 0) / 1024 ** 3).toFixed(2)} GiB; manifest ${manifest}`,
  );
  return { manifest, files };
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const SPEC = {
  name: 'mirror',
  summary: 'fill a directory with every input of an offline (production) image build',
  usage:
    'pnpm --filter @slm-copilot/scripts mirror -- --dir DIR [--ubuntu-release YYYYMMDD] [options]   (or --verify --dir DIR)',
  options: {
    dir: { type: 'string' },
    'ubuntu-release': { type: 'string' },
    model: { type: 'string' },
    lock: { type: 'string' },
    'backend-archive': { type: 'string' },
    'packer-plugin-version': { type: 'string' },
    verify: { type: 'boolean', default: false },
  },
  details: `Needs the internet (cloud-images.ubuntu.com, github.com, huggingface.co, the npm registry, archive.ubuntu.com),
apt-get and the ubuntu-keyring package. About 15 GiB. Then, on the build host:
  npm run build:image -- --profile offline --mirror DIR
The LocalAI backend (${MIRROR_FILES.backendArchive}) is a \`docker save\`-format tarball of
${localAi(LOCALAI_VERSION).backendImage}: made with skopeo when it is installed, else pass one made elsewhere
(skopeo copy docker://IMAGE docker-archive:FILE:IMAGE, or docker pull + docker save -o FILE IMAGE). Without either
the command refuses: nothing else here can fetch an OCI image.`,
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
};

export function main(argv: string[]): Promise<number> {
  return runCommand(SPEC, OPTION_HELP, argv, async ({ values, log }) => {
    const dir = values.dir as string | undefined;
    if (!dir) throw new UsageError('--dir is required', 'mirror --dir /srv/slm-mirror --ubuntu-release YYYYMMDD');
    if (values.verify) {
      const r = await verifyMirror(path.resolve(dir), { log });
      log.info(`mirror ${dir}: ${r.files} files match ${MIRROR_MANIFEST}`);
      return 0;
    }
    const lockPath = path.resolve((values.lock as string | undefined) ?? path.join(REPO_ROOT, 'artifacts.lock.json'));
    // the same dated release the production build pins, unless asked otherwise
    const release =
      (values['ubuntu-release'] as string | undefined) ??
      (await readBaseImagePin(lockPath)).release.slice('release-'.length);
    await fillMirror({
      dir: path.resolve(dir),
      ubuntuRelease: release,
      lockPath,
      model: values.model as string | undefined,
      backendArchive: values['backend-archive'] as string | undefined,
      packerPluginVersion: values['packer-plugin-version'] as string | undefined,
      log,
    });
    return 0;
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
