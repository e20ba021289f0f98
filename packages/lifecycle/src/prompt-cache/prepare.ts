// Configure's part of the prompt cache across restarts: which saved cache the engine may use, and
// deleting every other one (they hold users' code). See localai-install's slot-cache.ts for the design.
import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { AppliancePaths } from '@slm-copilot/context-schema';
import {
  decideSlotCache,
  engineCacheFingerprint,
  slotCacheRoot,
  staleSlotCacheEntries,
  type EngineInputs,
  type SlotCacheState,
} from '@slm-copilot/localai-install';
import type { Logger } from '@slm-copilot/task-kit';
import { readJson, stateFiles, writeJson, type InstalledImage } from '../state.js';

/** Root-only (state directory, 0600): the fingerprint covers the API keys. */
export const slotCacheStateFile = (paths: AppliancePaths): string => path.join(paths.stateDir, 'prompt-cache.json');

export interface SlotCacheFacts {
  modelSha256: string;
  apiKeys: readonly string[];
}

/** Deletes every saved cache but `keep`'s; returns the names deleted. */
export async function purgeSlotCaches(paths: AppliancePaths, keep: string | null, log: Logger): Promise<string[]> {
  const root = slotCacheRoot(paths);
  const stale = staleSlotCacheEntries(await readdir(root).catch(() => [] as string[]), keep);
  for (const name of stale) await rm(path.join(root, name), { recursive: true, force: true });
  if (stale.length > 0) {
    log.info(
      `deleted ${stale.length} saved prompt cache(s) (${stale.join(', ')}): model, chat template, ` +
        'engine settings or API keys changed, or ONEAPP_COPILOT_PROMPT_CACHE_PERSIST is off',
    );
  }
  return stale;
}

/**
 * The saved cache's id for this render (a new one when anything it depends on changed, null when
 * persistence is off), with every other saved cache deleted and the decision kept for the next boot.
 */
export async function prepareSlotCache(
  inputs: Omit<EngineInputs, 'slotCacheId'>,
  facts: SlotCacheFacts,
  log: Logger,
): Promise<string | null> {
  const { paths, config } = inputs;
  // LocalAI has no slot save/restore: its render neither uses nor judges the saved cache. Bootstrap's
  // fallback to llama-server (same boot) decides with llama-server's fingerprint, so a VM that falls
  // back at every boot keeps its id (and its saved prompts) instead of minting a new one each time.
  if (config.promptCachePersist && config.engine !== 'llama-server') return null;
  const installed = await readJson<InstalledImage>(stateFiles(paths).installed);
  const fingerprint = engineCacheFingerprint(inputs, {
    ...facts,
    engineSha256: installed?.llamaServer?.sha256 ?? null,
  });
  const file = slotCacheStateFile(paths);
  const stored = await readJson<SlotCacheState>(file);
  const state = decideSlotCache(stored, fingerprint, () => randomBytes(16).toString('hex'));
  await purgeSlotCaches(paths, state?.id ?? null, log);
  if (state && state !== stored) await writeJson(file, state);
  if (!state && stored) await rm(file, { force: true });
  return state?.id ?? null;
}
