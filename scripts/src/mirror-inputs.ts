/**
 * The inputs of a mirror, one fetcher each (Ubuntu cloud image, LocalAI and its backend, the model, npm
 * tarballs, Packer's QEMU plugin, .debs): every download verified against an upstream checksum wherever
 * one exists, and recorded with where that checksum came from.
 */
import { copyFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { checksumFor, localAiRelease, LOCALAI_VERSION } from '@slm-copilot/localai-install';
import { DEFAULT_MODEL_ID, fetchModel, findModel, lockedArtifact, type LockedArtifact } from '@slm-copilot/model-fetch';
import {
  ExitCode,
  exists,
  sha256File,
  sh,
  TaskError,
  UsageError,
  writeFileAtomic,
  type Logger,
} from '@slm-copilot/task-kit';
import { APT_PACKAGES } from './build-plan.js';
import { downloadDebs, ubuntuNobleSources } from './mirror-apt.js';
import { downloadSri, fetchText, npmIntegrity, npmTarballUrl } from './mirror-fetch.js';
import { MIRROR_FILES } from './mirror-layout.js';
import type { MirrorFile } from './mirror-manifest.js';

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
  return { name, size: (await stat(path.join(dir, name))).size, sha256, checksumSource, url };
}

export async function ubuntu(o: FillMirrorOptions, up: MirrorUpstreams): Promise<MirrorFile[]> {
  const base = `${up.ubuntuCloudImages}/release-${o.ubuntuRelease}`;
  const sums = await fetchText(
    `${base}/SHA256SUMS`,
    `the SHA256SUMS of Ubuntu noble release-${o.ubuntuRelease} (--ubuntu-release)`,
  );
  const sha = checksumFor(sums, MIRROR_FILES.ubuntuImage);
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

export async function localai(o: FillMirrorOptions, up: MirrorUpstreams): Promise<MirrorFile[]> {
  const release = localAiRelease(LOCALAI_VERSION);
  const [binary, checksums] = [MIRROR_FILES.localaiBinary, MIRROR_FILES.localaiChecksums];
  // the release's own base URL, with the GitHub origin swapped when a mirror of it is given (tests: the fake)
  const base = release.releaseBaseUrl.replace(/^https:\/\/github\.com/, up.github);
  const sums = await fetchText(`${base}/${checksums}`, `LocalAI ${LOCALAI_VERSION}'s checksums file`);
  const sha = checksumFor(sums, binary);
  if (!sha) throw new TaskError(`${base}/${checksums} lists no ${binary}`, { exitCode: ExitCode.integrity });
  await writeFileAtomic(path.join(o.dir, checksums), sums);
  const files: MirrorFile[] = [
    {
      name: checksums,
      size: Buffer.byteLength(sums),
      sha256: await sha256File(path.join(o.dir, checksums)),
      checksumSource: 'computed when mirrored (the release publishes no checksum of its checksums file)',
      url: `${base}/${checksums}`,
    },
    await fetchChecked(o.dir, binary, `${base}/${binary}`, sha, `${base}/${checksums}`, o.log),
  ];
  files.push(await backendArchive(o, release.backendImage));
  return files;
}

/** Refuses, before anything is written, a backend archive that cannot be had: no --backend-archive and no skopeo. */
export async function checkBackendSource(o: Pick<FillMirrorOptions, 'backendArchive'>): Promise<void> {
  if (o.backendArchive) {
    if (!(await exists(o.backendArchive))) throw new UsageError(`--backend-archive ${o.backendArchive}: no such file`);
    return;
  }
  if ((await sh({ nothrow: true })`command -v skopeo`).exitCode === 0) return;
  const image = localAiRelease(LOCALAI_VERSION).backendImage;
  throw new TaskError(
    `cannot make ${MIRROR_FILES.backendArchive}: skopeo is not installed and no --backend-archive was given`,
    {
      exitCode: ExitCode.environment,
      hint:
        `apt-get install skopeo, or make it elsewhere: skopeo copy docker://${image} ` +
        `docker-archive:${MIRROR_FILES.backendArchive}:${image} (or docker pull + docker save -o), ` +
        'then pass --backend-archive FILE',
    },
  );
}

/**
 * The llama-cpp backend image as a `docker save` tarball: copied from --backend-archive, else made by
 * skopeo (checkBackendSource said which is there).
 */
async function backendArchive(o: FillMirrorOptions, image: string): Promise<MirrorFile> {
  const dest = path.join(o.dir, MIRROR_FILES.backendArchive);
  let how: string;
  if (o.backendArchive) {
    await copyFile(o.backendArchive, `${dest}.partial`);
    how = `copied from --backend-archive ${o.backendArchive}`;
  } else {
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
    size: (await stat(dest)).size,
    sha256: await sha256File(dest),
    checksumSource: `computed when mirrored; ${how}`,
  };
}

/** The model's lock entry: read before anything is written, so a missing one refuses an empty-handed run. */
export async function lockedModel(o: Pick<FillMirrorOptions, 'model' | 'lockPath'>): Promise<LockedArtifact> {
  return lockedArtifact(o.lockPath, findModel(o.model ?? DEFAULT_MODEL_ID).id);
}

export async function model(o: FillMirrorOptions, locked: LockedArtifact): Promise<MirrorFile> {
  const id = o.model ?? DEFAULT_MODEL_ID;
  const name = path.basename(findModel(id).file);
  const checksumSource = `${path.basename(o.lockPath)} "${id}": ${locked.checksumSource}`;
  return fetchChecked(o.dir, name, locked.url, locked.sha256, checksumSource, o.log, locked.size);
}

export async function npmTarball(
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
  const pin = pinned ? ' (= the pin in the repository)' : ' (read when mirrored)';
  return { name, size, sha256, checksumSource: `npm registry dist.integrity ${published}${pin}`, url };
}

/**
 * Packer's QEMU plugin release zip + its SHA256SUMS (names as releases.hashicorp.com lists them;
 * unverified here).
 */
export async function packerPlugin(o: FillMirrorOptions, up: MirrorUpstreams, version: string): Promise<MirrorFile[]> {
  const v = version.replace(/^v/, '');
  const base = `${up.hashicorpReleases}/packer-plugin-qemu/${v}`;
  const sumsName = `packer-plugin-qemu_${v}_SHA256SUMS`;
  const zip = `packer-plugin-qemu_${v}_x5.0_linux_amd64.zip`;
  const sums = await fetchText(`${base}/${sumsName}`, `the Packer QEMU plugin ${v} checksums`);
  const sha = checksumFor(sums, zip);
  if (!sha) throw new TaskError(`${base}/${sumsName} lists no ${zip}`, { exitCode: ExitCode.integrity });
  return [await fetchChecked(o.dir, `packer-plugin-qemu/${zip}`, `${base}/${zip}`, sha, `${base}/${sumsName}`, o.log)];
}

export async function debs(o: FillMirrorOptions, up: MirrorUpstreams): Promise<MirrorFile[]> {
  const sources = o.aptSources ?? ubuntuNobleSources(up.ubuntuArchive, up.ubuntuSecurity);
  const dest = path.join(o.dir, MIRROR_FILES.aptDir);
  const names = await downloadDebs({ packages: o.aptPackages ?? APT_PACKAGES, dest, sources, log: o.log });
  const out: MirrorFile[] = [];
  for (const n of names) {
    const f = path.join(dest, n);
    const checksumSource = `apt (checked against the signed Packages index of: ${sources.join(' | ')})`;
    out.push({
      name: `${MIRROR_FILES.aptDir}/${n}`,
      size: (await stat(f)).size,
      sha256: await sha256File(f),
      checksumSource,
    });
  }
  return out;
}
