// fetchModel: sources in order, bounded retries, resume, verify, GGUF check, atomic install.
import { mkdir, rename, rm, statfs as fsStatfs } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { which } from 'zx';
import { createLogger, ExitCode, formatDuration, TaskError, type Logger } from '@slm-copilot/task-kit';
import { acquireDownloadLock, copyLocal, fileSize, fsyncDir, fsyncFile } from './files.js';
import { notGgufError, parseGguf, wantsGguf } from './gguf-check.js';
import { buildManifest, readManifest, sha256OfFile, verifySampled, writeManifest } from './manifest.js';
import type { GgufFacts, ModelManifest } from './manifest.js';
import { formatBytes } from './options.js';
import type { FetchModelOptions, FetchResult, SourceFailure, StatfsLike } from './options.js';
import { isTransient, RetryBudget, type RetryPolicy } from './retry.js';
import { StreamHash } from './tail-hasher.js';
import { runWget, type Failure } from './wget.js';

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

const SHA256_RE = /^[0-9a-f]{64}$/;
const MiB = 1024 * 1024;

const isRemote = (url: string) => /^(https?|ftp):\/\//i.test(url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Ctx {
  dest: string;
  dir: string;
  partial: string;
  bad: string;
  sha256: string;
  size: number | undefined;
  margin: number;
  statfs: (dir: string) => Promise<StatfsLike>;
  log: Logger;
  phase: <T>(name: string, fn: () => Promise<T>) => Promise<T>;
  hash: StreamHash;
  policy: RetryPolicy;
  timeoutSec: number;
  progress: 'bar' | 'dot' | 'none';
  wget: string;
}

/** `dest` already verified (manifest + sampled hash, or a local full hash): its manifest, else null. */
type Existing = { manifest: ModelManifest | null; bytes: number };

async function checkExisting(ctx: Ctx, wantManifest: boolean): Promise<Existing | null> {
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
    ok = (await sha256OfFile(dest)) === sha256;
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

/** Free space for what is left to download (+ margin), else a refusal naming the path and the numbers. */
async function checkDisk(ctx: Ctx, partialSize: number): Promise<void> {
  const { dir, size, margin, log } = ctx;
  const st = await ctx.statfs(dir);
  const free = Number(st.bavail) * Number(st.bsize);
  const remaining = size === undefined ? 0 : size - partialSize;
  const needed = remaining + margin;
  if (size === undefined) {
    log.warn(`size unknown: only the ${formatBytes(margin)} margin can be checked before downloading`);
  }
  if (free < needed) {
    const badSize = await fileSize(ctx.bad);
    throw new TaskError(
      `not enough disk space in ${dir} for ${path.basename(ctx.dest)}: need ${needed} bytes (${formatBytes(needed)}: ` +
        `${formatBytes(remaining)} still to download + ${formatBytes(margin)} margin), ` +
        `only ${free} bytes (${formatBytes(free)}) free`,
      {
        exitCode: ExitCode.environment,
        hint: badSize
          ? `${ctx.bad} (${formatBytes(badSize)}, a rejected download kept for inspection) can be removed`
          : 'free some space or grow the disk',
      },
    );
  }
  log.info(`disk: ${formatBytes(free)} free in ${dir}, ${formatBytes(needed)} needed`);
}

/** Moves the partial file aside (to `.bad`) and forgets its hash. */
async function setAside(ctx: Ctx): Promise<void> {
  await ctx.hash.restart();
  await rename(ctx.partial, ctx.bad);
}

/** One attempt on one source: wget (continuing the partial file), or a whole local copy. */
async function attempt(ctx: Ctx, url: string, resumeFrom: number): Promise<Failure | null> {
  if (!isRemote(url)) {
    const src = url.startsWith('file://') ? fileURLToPath(url) : url;
    if ((await fileSize(src)) === null) return { kind: 'not-found', cause: 'no such file in the mirror directory' };
    // a local copy rewrites the whole file: start its hash (and the file) from byte 0
    await ctx.hash.restart();
    await rm(ctx.partial, { force: true });
    ctx.hash.follow();
    return ctx.phase(`copy ${src}`, () => copyLocal(src, ctx.partial, ctx.size));
  }
  ctx.hash.follow();
  const what = resumeFrom > 0 ? `download ${url} from byte ${resumeFrom} (Range request)` : `download ${url}`;
  return ctx.phase(what, () =>
    runWget({
      url,
      partial: ctx.partial,
      resumeFrom,
      log: ctx.log.child('wget'),
      timeoutSec: ctx.timeoutSec,
      progress: ctx.progress,
      wget: ctx.wget,
    }),
  );
}

/**
 * Brings `<dest>.partial` to completion from one source: resumes after drops, retries transient
 * failures with backoff (bounded), restarts from 0 when the server ignores Range. Null on success.
 */
async function downloadFrom(ctx: Ctx, url: string): Promise<Failure | null> {
  const { partial, size, log } = ctx;
  const budget = new RetryBudget(ctx.policy);
  for (;;) {
    let partialSize = (await fileSize(partial)) ?? 0;
    if (size !== undefined && partialSize > size) {
      await setAside(ctx);
      log.warn(
        `${partial} is larger (${partialSize} bytes) than the expected ${size}: moved it aside to ${ctx.bad}, ` +
          'starting from scratch',
      );
      partialSize = 0;
    }
    await ctx.phase('check free disk space', () => checkDisk(ctx, partialSize));
    if (size !== undefined && partialSize === size) {
      log.info(`${partial} already has all ${size} bytes: verifying it without downloading`);
      ctx.hash.follow();
      return null;
    }
    const startedAt = performance.now();
    const failure = await attempt(ctx, url, partialSize);
    if (!failure) return null;
    if (failure.kind === 'range-ignored') {
      log.warn(
        `${url}: ${failure.cause}: restarting from 0 ` +
          `(the ${partialSize} bytes kept so far are discarded, the hash starts over)`,
      );
      await ctx.hash.restart();
      await rm(partial, { force: true });
      continue; // with no partial file left, the next request has no Range: this cannot repeat
    }
    if (failure.kind === 'disk-full') {
      const sofar = (await fileSize(partial)) ?? 0;
      const where = `${partial} (${sofar} bytes so far, kept for resuming)`;
      throw new TaskError(`${url}: ${failure.cause} while writing ${where}`, {
        exitCode: ExitCode.environment,
        hint: `free space in ${ctx.dir}, then run again: the download continues where it stopped`,
      });
    }
    if (!isTransient(failure)) return failure;
    const added = ((await fileSize(partial)) ?? 0) - partialSize;
    const next = budget.next(startedAt, added);
    if ('giveUp' in next) return { ...failure, cause: `${failure.cause}; ${next.giveUp}` };
    log.warn(`${url}: ${failure.cause}; retry ${next.retry}/${next.of} in ${formatDuration(next.delayMs)}`);
    await sleep(next.delayMs);
  }
}

/** Size and SHA-256 of the finished partial file; on a mismatch it is moved aside to `.bad`. */
async function verifyPartial(ctx: Ctx): Promise<{ bytes: number } | Failure> {
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
  digest ??= await ctx.phase('verify SHA-256', () => sha256OfFile(ctx.partial));
  if (digest !== ctx.sha256) {
    await setAside(ctx);
    const cause =
      `checksum mismatch: got sha256 ${digest}, expected ${ctx.sha256}; ` + `the file was moved aside to ${ctx.bad}`;
    return { kind: 'checksum', cause };
  }
  return { bytes: got };
}

/** fsync, GGUF check (for a `.gguf` dest), atomic rename into place, manifest. */
async function install(ctx: Ctx, url: string, wantManifest: boolean): Promise<ModelManifest | null> {
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
async function allFailed(ctx: Ctx, sources: string[], failures: SourceFailure[]): Promise<TaskError> {
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

function validate(options: FetchModelOptions): string {
  const sha256 = options.sha256.toLowerCase();
  if (!SHA256_RE.test(sha256)) {
    throw new TaskError(`"${options.sha256}" is not a SHA-256 (64 hex digits)`, { exitCode: ExitCode.usage });
  }
  if (options.urls.length === 0) throw new TaskError('no source URL given', { exitCode: ExitCode.usage });
  if (options.size !== undefined && (!Number.isSafeInteger(options.size) || options.size < 0)) {
    throw new TaskError(`invalid size ${options.size}`, { exitCode: ExitCode.usage });
  }
  if (options.tries !== undefined && (!Number.isSafeInteger(options.tries) || options.tries < 1)) {
    throw new TaskError(`invalid tries ${options.tries} (expected an integer >= 1)`, { exitCode: ExitCode.usage });
  }
  return sha256;
}

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
  const sha256 = validate(options);
  const dest = path.resolve(options.dest);
  const phases: FetchResult['phases'] = [];
  const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await log.phase(name, fn);
    } finally {
      phases.push({ name, ms: Math.round(performance.now() - t0) });
    }
  };
  const progressOpt = options.progress ?? 'auto';
  const ctx: Ctx = {
    dest,
    dir: path.dirname(dest),
    partial: `${dest}.partial`,
    bad: `${dest}.bad`,
    sha256,
    size: options.size,
    margin: options.marginBytes ?? 64 * MiB,
    statfs: options.statfs ?? ((d: string) => fsStatfs(d)),
    log,
    phase,
    hash: new StreamHash(`${dest}.partial`, (options.hashMode ?? 'stream') === 'stream'),
    policy: {
      tries: options.tries ?? 5,
      firstDelayMs: (options.waitRetrySec ?? 10) * 1000,
      maxDelayMs: (options.maxWaitRetrySec ?? 60) * 1000,
      windowMs: (options.retryWindowSec ?? 600) * 1000,
    },
    timeoutSec: options.timeoutSec ?? 60,
    progress: progressOpt === 'auto' ? (process.stderr.isTTY ? 'bar' : 'dot') : progressOpt,
    wget: 'wget',
  };
  const wantManifest = options.manifest ?? true;
  await mkdir(ctx.dir, { recursive: true });

  // 1. Already there? Then no network at all.
  const existing = await phase('check existing file', () => checkExisting(ctx, wantManifest));
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
