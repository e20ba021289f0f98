/**
 * What a mirror directory holds (`<dir>/<artifact-name>`, .debs under `apt/`), as the mirror command
 * (./mirror.ts) fills it and the build (stage, preflight, offline base image) reads it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { checksumFor, localAiRelease, LOCALAI_VERSION } from '@slm-copilot/localai-install';
import { ExitCode, TaskError } from '@slm-copilot/task-kit';
import { NODE_LLAMA_CPP_VERSION } from '@slm-copilot/testbed';
import { readMirrorManifest } from './mirror-manifest.js';
import { NODE_RUNTIME } from './node-runtime.js';

const localAi = localAiRelease(LOCALAI_VERSION);

/** File names inside a mirror. */
export const MIRROR_FILES = {
  // the name inside Ubuntu's dated release directories (release-YYYYMMDD/SHA256SUMS lists it so)
  ubuntuImage: 'ubuntu-24.04-server-cloudimg-amd64.img',
  ubuntuSums: 'noble-server-cloudimg-SHA256SUMS',
  localaiBinary: localAi.binaryAsset,
  localaiChecksums: localAi.checksumsAsset,
  /** A `docker save`-format tarball (go-containerregistry `tarball`), what LocalAI's `ocifile://` reads. */
  backendArchive: localAi.backendArchive,
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
  const sha = checksumFor(sums, MIRROR_FILES.ubuntuImage);
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
