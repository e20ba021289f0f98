// Phase 1 of a fetch: is `dest` already the requested file? Then no network at all.
import { sha256File } from '@slm-copilot/task-kit';
import type { Ctx } from './fetch-context.js';
import { fileSize } from './files.js';
import { notGgufError, parseGguf, wantsGguf } from './gguf-check.js';
import { buildManifest, readManifest, verifySampled, writeManifest } from './manifest.js';
import type { GgufFacts, ModelManifest } from './manifest.js';

/** `dest` already verified (manifest + sampled hash, or a local full hash): its manifest, else null. */
export type Existing = { manifest: ModelManifest | null; bytes: number };

export async function checkExisting(ctx: Ctx, wantManifest: boolean): Promise<Existing | null> {
  const { dest, sha256, size, log } = ctx;
  const destSize = await fileSize(dest);
  if (destSize === null) return null;
  const manifest = await readManifest(dest);
  let ok = false;
  const sizeOk = size === undefined || size === destSize;
  if (manifest && manifest.sha256.toLowerCase() === sha256 && manifest.bytes === destSize && sizeOk) {
    const v = await verifySampled(dest, manifest);
    if (!v.ok) log.warn(`${v.message}; downloading it again`);
    ok = v.ok;
  } else if (!manifest && sizeOk) {
    // No manifest (e.g. interrupted right after the install): a local hash decides, still without network.
    ok = (await sha256File(dest)) === sha256;
  }
  if (!ok) {
    const wanted = `sha256 ${sha256.slice(0, 12)}…`;
    log.info(
      `${dest} exists but is not the requested file (${wanted}); ` +
        'it is replaced only after the new one is verified',
    );
    return null;
  }
  if (manifest && (manifest.gguf || !wantsGguf(dest))) return { manifest, bytes: destSize };
  let gguf: GgufFacts | undefined;
  if (wantsGguf(dest)) {
    // installed before .gguf destinations were checked, or by hand: the same check as a download
    const parsed = await parseGguf(dest);
    if ('reason' in parsed) {
      throw notGgufError({ dest, source: manifest?.source ?? null, reason: parsed.reason, kept: dest });
    }
    gguf = parsed.facts;
  }
  const m = wantManifest ? await buildManifest(dest, { sha256, source: manifest?.source ?? null, gguf }) : null;
  if (m) await writeManifest(dest, m);
  return { manifest: m ?? manifest, bytes: destSize };
}
