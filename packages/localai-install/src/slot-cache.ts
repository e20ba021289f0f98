/**
 * The engine's prompt cache across restarts (llama-server only; ONEAPP_COPILOT_PROMPT_CACHE_PERSIST).
 *
 * llama-server writes a slot's KV cache and tokens to a file and reads them back (`--slot-save-path`,
 * `POST /slots/<id>?action=save|restore`); on the pinned engine a restored slot is really reused by the
 * next request with the same prefix (measured: README "Prompt cache").
 *
 * Never the wrong model: the engine's `--slot-save-path` is a directory named by a random id that the
 * lifecycle mints whenever anything the saved KV depends on changes (the fingerprint below: model
 * sha256, engine build, chat template, the flags that shape the KV cache, the API keys) and it deletes
 * every other directory. The engine reads only its own directory, so a file saved for other inputs is
 * both unreachable and gone. The id is random, not the fingerprint itself, because the unit file is
 * world-readable and the fingerprint covers the API keys.
 *
 * LocalAI v4.9.0 has no equivalent: its llama-cpp backend (backend/cpp/llama-cpp/grpc-server.cpp) serves
 * no slot save/restore, and the model YAML's `prompt_cache_path` is read only by the legacy go-llama
 * backend (backend/go/llm/llama), not by the llama-cpp backend the appliance uses.
 */
import { createHash } from 'node:crypto';
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import { underRoot } from '@slm-copilot/task-kit';

/** The engine unit's StateDirectory (systemd keeps it under /var/lib/private with DynamicUser). */
export const ENGINE_STATE_DIR = '/var/lib/slm-copilot-engine';
/** Where the saved slots live, one directory per fingerprint id (only the current one is kept). */
export const SLOT_CACHE_ROOT = `${ENGINE_STATE_DIR}/slot-cache`;
/** Bumped when what is saved, or how, changes: every saved file is then purged. */
export const SLOT_CACHE_FORMAT = 1;
/** Ids the lifecycle mints: 128 random bits in hex (the directory name; a unit-file word). */
export const SLOT_CACHE_ID = /^[0-9a-f]{32}$/;

/**
 * llama-server flags that change what a KV row holds or how it is laid out (common/arg.cpp): context
 * and slots (per-slot size, unified or not), K/V types, flash attention (V transposed or not), RoPE.
 */
export const KV_SHAPING_FLAGS = [
  '--ctx-size',
  '--parallel',
  '--cache-type-k',
  '--cache-type-v',
  '--flash-attn',
  '--kv-unified',
  '--no-kv-unified',
  '--swa-full',
  '--rope-scaling',
  '--rope-scale',
  '--rope-freq-base',
  '--rope-freq-scale',
  '--yarn-orig-ctx',
] as const;

/** Persistence is on: llama-server, and the operator did not turn it off. */
export const slotCacheEnabled = (config: Config): boolean =>
  config.engine === 'llama-server' && config.promptCachePersist;

export const slotFileName = (slot: number): string => `slot${slot}.bin`;
/** What the engine writes before the file is complete, synced and renamed (never restored). */
export const partialFileName = (slot: number): string => `${slotFileName(slot)}.partial`;

/** The engine's `--slot-save-path` for an id, under the paths' root. */
export function slotCacheDir(paths: AppliancePaths, id: string): string {
  if (!SLOT_CACHE_ID.test(id)) throw new Error(`internal: not a slot-cache id: ${JSON.stringify(id)}`);
  return underRoot(paths.prefix || '/', `${SLOT_CACHE_ROOT}/${id}`);
}

export const slotCacheRoot = (paths: AppliancePaths): string => underRoot(paths.prefix || '/', SLOT_CACHE_ROOT);

/** The KV-shaping flags of a llama-server command line with their values, in a stable order. */
export function kvShapingFlags(args: readonly string[]): string[][] {
  const flags = new Set<string>(KV_SHAPING_FLAGS);
  const out: string[][] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!flags.has(a)) continue;
    const value = args[i + 1];
    const takesValue = value !== undefined && !value.startsWith('--');
    out.push(takesValue ? [a, value] : [a]);
  }
  return out.sort((x, y) => x[0]!.localeCompare(y[0]!));
}

/** Everything a saved slot is only valid for. */
export interface SlotCacheInputs {
  modelSha256: string;
  /** The llama-server build as installed (its sha256; null when the image does not say). */
  engineSha256: string | null;
  chatTemplate: string;
  /** The engine's command line (only the KV-shaping flags count). */
  engineArgs: readonly string[];
  /** Every key the gateway accepts: a change purges, since the files hold the users' code. */
  apiKeys: readonly string[];
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** sha256 over the inputs; equal fingerprints ⇔ a saved slot may be restored. Pure. */
export function slotCacheFingerprint(inputs: SlotCacheInputs): string {
  return sha256(
    JSON.stringify({
      format: SLOT_CACHE_FORMAT,
      model: inputs.modelSha256,
      engine: inputs.engineSha256,
      template: sha256(inputs.chatTemplate),
      kv: kvShapingFlags(inputs.engineArgs),
      keys: sha256(JSON.stringify([...inputs.apiKeys].sort())),
    }),
  );
}

/** Kept in the appliance's state directory (root only, 0600). */
export interface SlotCacheState {
  fingerprint: string;
  id: string;
}

/**
 * The id to serve with: the stored one while the fingerprint is unchanged, a new one otherwise, none
 * when persistence is off (fingerprint null). Pure (`mintId` gives the randomness).
 */
export function decideSlotCache(
  stored: SlotCacheState | null,
  fingerprint: string | null,
  mintId: () => string,
): SlotCacheState | null {
  if (fingerprint === null) return null;
  if (stored && stored.fingerprint === fingerprint && SLOT_CACHE_ID.test(stored.id)) return stored;
  return { fingerprint, id: mintId() };
}

/** Entries of the slot-cache root to delete: everything but the current id's directory. */
export function staleSlotCacheEntries(names: readonly string[], keep: string | null): string[] {
  return names.filter((n) => n !== keep).sort();
}
