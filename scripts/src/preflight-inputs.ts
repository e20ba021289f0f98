/** The preflight's checks of the build's inputs and room: the model's lock entry, the mirror, free disk. */
import path from 'node:path';
import type { BuildRecipe } from './build-plan.js';
import { GB, gb, type Check } from './check.js';
import type { HostProbes } from './host-probes.js';
import { MIRROR_FILES } from './mirror-layout.js';

/** Approximate room beside the model in the image: the OS, both engines, Node. */
export const IMAGE_OVERHEAD_BYTES = 3 * GB;
/** Approximate cache use: base image, llama.cpp source and builds, Node runtime, Packer's cache. */
export const CACHE_BYTES = 3 * GB;

export interface PreflightInput {
  recipe: BuildRecipe;
  outputDir: string;
  cache: string;
}

/** Model bytes for the disk check, and whether the figure is approximate. */
function modelBytes(recipe: BuildRecipe): { bytes: number; approx: boolean; what: string } {
  const m = recipe.model;
  if (m.kind === 'locked')
    return { bytes: m.artifact.size ?? 0, approx: false, what: `${m.id} ${gb(m.artifact.size ?? 0)} (lock)` };
  if (m.kind === 'missing-lock')
    return { bytes: m.approxBytes, approx: true, what: `${m.id} ~${gb(m.approxBytes)} (catalog)` };
  return { bytes: 0, approx: false, what: 'the tiny test model (< 10 MB)' };
}

interface DiskNeed {
  what: string;
  dir: string;
  bytes: number;
  setting: string;
}

/** Output and cache on one file system: one need of both sizes. */
async function diskNeeds(input: PreflightInput, imageBytes: number, probes: HostProbes) {
  // Packer writes the disk, then a compressed copy of it; the mirror disk holds the staged files.
  const needs: DiskNeed[] = [
    {
      what: 'output',
      dir: input.outputDir,
      bytes: 2 * imageBytes,
      setting: 'output directory (SLM_COPILOT_OUTPUT_DIR, --output)',
    },
    { what: 'cache', dir: input.cache, bytes: CACHE_BYTES, setting: 'cache directory (SLM_COPILOT_CACHE, --cache)' },
  ];
  const [output, cache] = await Promise.all(needs.map(async (n) => ({ ...n, ...(await probes.freeSpace(n.dir)) })));
  if (output!.dev !== cache!.dev) return [output!, cache!];
  const both = { what: 'output + cache', dir: `${output!.dir}, ${cache!.dir}`, setting: 'output or cache directory' };
  return [{ ...output!, ...both, bytes: output!.bytes + cache!.bytes }];
}

export async function diskChecks(input: PreflightInput, probes: HostProbes): Promise<Check[]> {
  const model = modelBytes(input.recipe);
  const needs = await diskNeeds(input, model.bytes + IMAGE_OVERHEAD_BYTES, probes);
  const basis =
    `${model.approx ? 'approximate: ' : ''}${model.what}; image ≈ model + ${gb(IMAGE_OVERHEAD_BYTES)}, ` +
    `twice while Packer converts; cache ≈ ${gb(CACHE_BYTES)}`;
  return needs.map((e) => {
    const enough = e.free >= e.bytes;
    const check: Check = {
      name: `disk (${e.what})`,
      status: enough ? 'ok' : 'low',
      detail: `${gb(e.free)} free in ${e.dir}; needs ≈ ${gb(e.bytes)} (${basis})`,
      blocking: !enough,
    };
    return enough
      ? check
      : { ...check, fix: `free ${gb(e.bytes - e.free)} on ${e.at}, or choose another ${e.setting}` };
  });
}

export function lockCheck(recipe: BuildRecipe): Check[] {
  const m = recipe.model;
  if (m.kind === 'test') return [];
  if (m.kind === 'missing-lock') {
    const detail = `artifacts.lock.json has no entry for ${m.id}`;
    return [{ name: 'model lock', status: 'missing', detail, fix: m.hint, blocking: true }];
  }
  const a = m.artifact;
  const detail = `${m.id}: ${a.file}, ${gb(a.size ?? 0)}, sha256 ${a.sha256.slice(0, 12)}…`;
  return [{ name: 'model lock', status: 'ok', detail, blocking: false }];
}

const missingMirror = (detail: string, fix: string): Check[] => [
  { name: 'mirror', status: 'missing', detail, fix, blocking: true },
];
const mirrorOk = (detail: string): Check[] => [{ name: 'mirror', status: 'ok', detail, blocking: false }];

export async function mirrorChecks(recipe: BuildRecipe, probes: HostProbes): Promise<Check[]> {
  const dir = recipe.hostMirror;
  if (dir === undefined && recipe.profile === 'offline') {
    return missingMirror(
      'the offline profile takes every input from a mirror directory (an http(s) mirror cannot be staged)',
      'pass --mirror DIR, filled by the mirror command',
    );
  }
  if (dir === undefined) return [];
  if (!(await probes.pathExists(dir)))
    return missingMirror(`${dir} does not exist`, `create it and put the artifacts there as ${dir}/<artifact-name>`);
  if (recipe.profile !== 'offline') return mirrorOk(`${dir}: its files are staged into the build VM`);
  const missing: string[] = [];
  for (const f of [MIRROR_FILES.ubuntuImage, MIRROR_FILES.ubuntuSums])
    if (!(await probes.pathExists(path.join(dir, f)))) missing.push(f);
  if (missing.length === 0) return mirrorOk(`${dir} has the Ubuntu cloud image and its SHA256SUMS`);
  return missingMirror(`${dir} lacks ${missing.join(', ')}`, 'fill it with the mirror command on a connected machine');
}
