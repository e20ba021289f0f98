/**
 * Staging: the host directory that becomes the build VM's mirror (packages/rig/vm stages it as a read-only
 * disk at STAGED_MIRROR_DIR). It holds what this host makes for the image — the llama-server runtime in
 * every profile, the tiny test model in test — and the files of the user's mirror directory.
 */
import { existsSync } from 'node:fs';
import { copyFile, link, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '@slm-copilot/task-kit';
import { ensureLlamaRuntime, ensureTinyModel, NODE_LLAMA_CPP_VERSION } from '@slm-copilot/testbed';
import type { BuildRecipe, StagedArtifacts } from './build-plan.js';
import { TEST_MODEL_FILE } from './build-plan.js';
import { MIRROR_FILES } from './mirror-layout.js';
import { ensureNodeRuntime } from './node-runtime.js';

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
    const n = await log.phase(`stage the mirror ${hostMirror}`, () =>
      linkTree(hostMirror, dir, path.dirname(path.resolve(dir))),
    );
    log.info(`${n} files of ${hostMirror} staged`);
  }
  if (recipe.hostMirror !== undefined) await seedNpmTarballs(recipe.hostMirror, cacheDir, log);
  const runtime = await log.phase('llama-server runtime (dispatching build)', () =>
    ensureLlamaRuntime({ cacheDir, log }),
  );
  const llamaFile = path.basename(runtime.archive);
  await rm(path.join(dir, llamaFile), { force: true });
  await linkOrCopy(runtime.archive, path.join(dir, llamaFile));
  log.info(
    `llama-server ${runtime.release} (${runtime.commit.slice(0, 12)}), CPU variants: ${runtime.variants.join(', ')}`,
  );
  const staged: StagedArtifacts = { llamaServer: { file: llamaFile, sha256: runtime.sha256, size: runtime.size } };
  if (recipe.model.kind === 'test') {
    const model = await log.phase('tiny test model', () => ensureTinyModel({ cacheDir, log }));
    await rm(path.join(dir, TEST_MODEL_FILE), { force: true });
    await linkOrCopy(model.path, path.join(dir, TEST_MODEL_FILE));
    staged.testModel = { sha256: model.sha256, size: model.bytes };
  }
  return staged;
}

/**
 * Offline: the two npm tarballs the build needs on the host (llama.cpp's source in node-llama-cpp, the
 * Node runtime) come from the mirror (verified against its manifest, whose checksums are the registry's
 * integrity) into the host cache, where the build looks before asking the registry.
 */
async function seedNpmTarballs(mirror: string, cacheDir: string, log: Logger): Promise<void> {
  const llamaSource = path.join(mirror, MIRROR_FILES.llamaSource);
  const cached = path.join(cacheDir, 'npm', `node-llama-cpp-${NODE_LLAMA_CPP_VERSION}.tgz`);
  if (existsSync(llamaSource) && !existsSync(cached)) {
    await linkOrCopy(llamaSource, cached);
    log.info(`llama.cpp source from the mirror: ${MIRROR_FILES.llamaSource}`);
  }
  const nodeRuntime = path.join(mirror, MIRROR_FILES.nodeRuntime);
  if (existsSync(nodeRuntime)) await ensureNodeRuntime(log, { tarball: nodeRuntime, cacheDir });
}
