/**
 * Staging: the host directory that becomes the build VM's mirror (packages/vm stages it as a read-only
 * disk at STAGED_MIRROR_DIR). It holds what this host makes for the image — the llama-server runtime in
 * every profile, the tiny test model in test — and the files of the user's mirror directory.
 */
import { copyFile, link, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, TaskError, type Logger } from '@slm-copilot/task-kit';
import { ensureLlamaRuntime, ensureTinyModel } from '@slm-copilot/testbed';
import type { BuildRecipe, StagedArtifacts } from './build-plan.js';
import { OFFLINE_BASE_IMAGE, TEST_MODEL_FILE } from './build-plan.js';

/** A hard link (same file system: no copy of a 14 GB model), else a copy. */
async function linkOrCopy(from: string, to: string): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true });
  await link(from, to).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EXDEV' && error.code !== 'EPERM') throw error;
    await copyFile(from, to);
  });
}

/** Links every file of `src` under `dest`, skipping `skip` (the build's output, when it lies inside the mirror). */
async function linkTree(src: string, dest: string, skip: string, rel = ''): Promise<number> {
  let n = 0;
  for (const e of await readdir(path.join(src, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (path.resolve(src, r) === skip) continue;
    if (e.isDirectory()) n += await linkTree(src, dest, skip, r);
    else if (e.isFile()) {
      await linkOrCopy(path.join(src, r), path.join(dest, r));
      n++;
    }
  }
  return n;
}

/**
 * Fills `dir` (emptied first) with the artifacts of the recipe; returns their checksums for the plan.
 * Our own artifacts are written after the user's files, so a same-named file in the mirror cannot
 * replace the build's.
 */
export async function stageArtifacts(
  recipe: BuildRecipe,
  dir: string,
  opts: { cacheDir: string; log: Logger },
): Promise<StagedArtifacts> {
  const { log, cacheDir } = opts;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  if (recipe.hostMirror !== undefined) {
    const hostMirror = recipe.hostMirror;
    const n = await log.phase(`stage the mirror ${hostMirror}`, () => linkTree(hostMirror, dir, path.dirname(path.resolve(dir))));
    log.info(`${n} files of ${hostMirror} staged`);
  }
  const runtime = await log.phase('llama-server runtime (dispatching build)', () =>
    ensureLlamaRuntime({ cacheDir, log: (m: string) => log.info(m) }),
  );
  const llamaFile = path.basename(runtime.archive);
  await rm(path.join(dir, llamaFile), { force: true });
  await linkOrCopy(runtime.archive, path.join(dir, llamaFile));
  log.info(
    `llama-server ${runtime.release} (${runtime.commit.slice(0, 12)}), CPU variants: ${runtime.variants.join(', ')}`,
  );
  const staged: StagedArtifacts = { llamaServer: { file: llamaFile, sha256: runtime.sha256, size: runtime.size } };
  if (recipe.model.kind === 'test') {
    const model = await log.phase('tiny test model', () =>
      ensureTinyModel({ cacheDir, log: (m: string) => log.info(m) }),
    );
    await rm(path.join(dir, TEST_MODEL_FILE), { force: true });
    await linkOrCopy(model.path, path.join(dir, TEST_MODEL_FILE));
    staged.testModel = { sha256: model.sha256, size: model.bytes };
  }
  return staged;
}

/** The offline base image: the mirror's Ubuntu cloud image and its sha256 from the SHA256SUMS beside it. */
export async function offlineBaseImage(mirror: string): Promise<{ image: string; checksum: string }> {
  const sums = path.join(mirror, OFFLINE_BASE_IMAGE.sums);
  const text = await readFile(sums, 'utf8');
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
    if (m && m[2] === OFFLINE_BASE_IMAGE.file)
      return { image: path.join(mirror, OFFLINE_BASE_IMAGE.file), checksum: `sha256:${m[1]}` };
  }
  throw new TaskError(`${sums} lists no sha256 for ${OFFLINE_BASE_IMAGE.file}`, {
    exitCode: ExitCode.integrity,
    hint: 'fill the mirror again with the mirror command',
  });
}
