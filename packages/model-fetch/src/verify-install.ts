// Phase 3 of a fetch: verify the finished partial file, install it atomically, or explain the failure.
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, fsyncDir, sha256File, TaskError } from '@slm-copilot/task-kit';
import { setAside, type Ctx } from './fetch-context.js';
import { fileSize, fsyncFile } from './files.js';
import { notGgufError, parseGguf, wantsGguf } from './gguf-check.js';
import { buildManifest, writeManifest } from './manifest.js';
import type { GgufFacts, ModelManifest } from './manifest.js';
import type { SourceFailure } from './options.js';
import type { Failure } from './wget.js';

/** Size and SHA-256 of the finished partial file; on a mismatch it is moved aside to `.bad`. */
export async function verifyPartial(ctx: Ctx): Promise<{ bytes: number } | Failure> {
  const got = (await fileSize(ctx.partial)) ?? 0;
  if (ctx.size !== undefined && got !== ctx.size) {
    await setAside(ctx);
    const cause = `size mismatch: got ${got} bytes, expected ${ctx.size}; moved aside to ${ctx.bad}`;
    return { kind: 'checksum', cause };
  }
  const streamed = ctx.hash.enabled ? await ctx.phase('finish streamed SHA-256', () => ctx.hash.take()) : null;
  let digest = streamed?.bytes === got ? streamed.sha256 : null;
  if (ctx.hash.enabled && digest === null) {
    ctx.log.warn('the streamed hash could not follow the file; hashing it again from disk');
  }
  digest ??= await ctx.phase('verify SHA-256', () => sha256File(ctx.partial));
  if (digest !== ctx.sha256) {
    await setAside(ctx);
    const cause =
      `checksum mismatch: got sha256 ${digest}, expected ${ctx.sha256}; ` + `the file was moved aside to ${ctx.bad}`;
    return { kind: 'checksum', cause };
  }
  return { bytes: got };
}

/** fsync, GGUF check (for a `.gguf` dest), atomic rename into place, manifest. */
export async function install(ctx: Ctx, url: string, wantManifest: boolean): Promise<ModelManifest | null> {
  let gguf: GgufFacts | null | undefined;
  if (wantsGguf(ctx.dest)) {
    const parsed = await ctx.phase('check GGUF header', () => parseGguf(ctx.partial));
    if ('reason' in parsed) {
      await setAside(ctx);
      throw notGgufError({ dest: ctx.dest, source: url, reason: parsed.reason, kept: ctx.bad });
    }
    gguf = parsed.facts;
  }
  await ctx.phase('install', async () => {
    await fsyncFile(ctx.partial);
    await rename(ctx.partial, ctx.dest);
    await fsyncDir(ctx.dir);
    await rm(ctx.bad, { force: true });
  });
  if (!wantManifest) return null;
  return ctx.phase('write manifest', async () => {
    const m = await buildManifest(ctx.dest, { sha256: ctx.sha256, source: url, gguf });
    await writeManifest(ctx.dest, m);
    return m;
  });
}

/** The error when every source failed: integrity when any source delivered wrong bytes. */
export async function allFailed(ctx: Ctx, sources: string[], failures: SourceFailure[]): Promise<TaskError> {
  const list = failures.map((f) => `  - ${f.url}: ${f.cause}`).join('\n');
  const wrongBytes = failures.some((f) => f.kind === 'checksum');
  const partialLeft = await fileSize(ctx.partial);
  const badLeft = await fileSize(ctx.bad);
  const hints: string[] = [];
  if (wrongBytes && badLeft !== null) {
    hints.push(
      `the last rejected download is kept as ${ctx.bad} (${badLeft} bytes) for inspection; ` +
        'no source is downloaded twice. Check the expected sha256 (the artifacts.lock.json entry or --sha256) ' +
        'against the source, or add a --mirror with a good copy; ' +
        `running again downloads from scratch. Remove ${ctx.bad} when done`,
    );
  }
  if (partialLeft) hints.push(`${partialLeft} bytes are kept in ${ctx.partial}: running again continues from there`);
  return new TaskError(`could not fetch ${path.basename(ctx.dest)} from any of ${sources.length} source(s):\n${list}`, {
    exitCode: wrongBytes ? ExitCode.integrity : ExitCode.network,
    hint: hints.length ? hints.join('; ') : undefined,
  });
}
