// fetchModel: sources in order, bounded retries, resume, verify, GGUF check, atomic install.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { which } from 'zx';
import { createLogger, ExitCode, formatDuration, TaskError } from '@slm-copilot/task-kit';
import { downloadFrom } from './download.js';
import { checkExisting } from './existing.js';
import { createFetchContext, isRemote, validateOptions } from './fetch-context.js';
import { acquireDownloadLock } from './files.js';
import { formatBytes } from './options.js';
import type { FetchModelOptions, FetchResult, SourceFailure } from './options.js';
import { allFailed, install, verifyPartial } from './verify-install.js';

export { classifyWgetFailure, type FailureKind } from './wget.js';
export { TailHasher } from './tail-hasher.js';
export {
  formatBytes,
  mirrorSources,
  type FetchModelOptions,
  type FetchResult,
  type HashMode,
  type SourceFailure,
  type StatfsLike,
} from './options.js';

/**
 * Downloads (or copies) a model, resumably, and installs it only once its SHA-256 matches (and,
 * for a `*.gguf` dest, once it parses as GGUF).
 *
 * - `dest` already verified (manifest with the same sha256/size, sampled hash intact): returns at
 *   once, without any network I/O.
 * - `<dest>.partial` left by an interrupted run is continued with a Range request, from whichever
 *   source answers first; a server that ignores Range is detected and the file restarts from 0.
 * - Refused, reset, dropped and timed-out connections are retried with exponential backoff, within
 *   `tries` attempts without progress and `retryWindowSec`.
 * - A checksum mismatch moves the file aside to `<dest>.bad` and goes on to the next source: the
 *   same source is never downloaded twice. With no source left, it stops with the mismatch.
 */
export async function fetchModel(options: FetchModelOptions): Promise<FetchResult> {
  const log = options.log ?? createLogger();
  const sha256 = validateOptions(options);
  const dest = path.resolve(options.dest);
  const { ctx, phases } = createFetchContext(options, dest, sha256, log);
  const wantManifest = options.manifest ?? true;
  await mkdir(ctx.dir, { recursive: true });

  // 1. Already there? Then no network at all.
  const existing = await ctx.phase('check existing file', () => checkExisting(ctx, wantManifest));
  if (existing) {
    const what = `${formatBytes(existing.bytes)}, sha256 ${sha256.slice(0, 12)}…`;
    log.info(`${dest} is already in place and verified (${what}): nothing to download`);
    const { bytes, manifest } = existing;
    return { dest, sha256, bytes, source: null, downloaded: false, manifest, phases };
  }

  const sources = [...new Set(options.urls)];
  const wget = options.wget ?? (sources.some(isRemote) ? await which('wget', { nothrow: true }) : 'wget');
  if (wget === null) {
    const hint = 'apt-get install -y wget';
    throw new TaskError('the command "wget" is not installed', { exitCode: ExitCode.environment, hint });
  }
  ctx.wget = wget;

  const release = await acquireDownloadLock(`${ctx.partial}.lock`, dest);
  try {
    const failures: SourceFailure[] = [];
    for (const url of sources) {
      // 2. Transfer from this source (retrying what may pass), hashing as the bytes land.
      const outcome = (await downloadFrom(ctx, url)) ?? (await verifyPartial(ctx));
      if ('kind' in outcome) {
        failures.push({ url, kind: outcome.kind, cause: outcome.cause });
        log.warn(`${url}: ${outcome.cause}${sources.at(-1) === url ? '' : '; trying the next source'}`);
        continue;
      }
      // 3. Install: GGUF check, durable bytes, an atomic rename, then the manifest.
      const manifest = await install(ctx, url, wantManifest);
      const total = phases.reduce((a, p) => a + p.ms, 0);
      const what = `${formatBytes(outcome.bytes)} verified (sha256 ${sha256.slice(0, 12)}…)`;
      log.info(`${dest}: ${what} from ${url} in ${formatDuration(total)}`);
      return { dest, sha256, bytes: outcome.bytes, source: url, downloaded: true, manifest, phases };
    }
    throw await allFailed(ctx, sources, failures);
  } finally {
    await ctx.hash.restart();
    await release();
  }
}
