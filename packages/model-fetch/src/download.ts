// Phase 2 of a fetch: bring `<dest>.partial` to completion from one source (resume, retry, restart).
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, formatDuration, TaskError } from '@slm-copilot/task-kit';
import { isRemote, setAside, type Ctx } from './fetch-context.js';
import { copyLocal, fileSize } from './files.js';
import { formatBytes } from './options.js';
import { isTransient, RetryBudget } from './retry.js';
import { runWget, type Failure } from './wget.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
export async function downloadFrom(ctx: Ctx, url: string): Promise<Failure | null> {
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
