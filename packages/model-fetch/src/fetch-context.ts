// The state one fetch carries through its phases, built once from the caller's options.
import { rename, statfs as fsStatfs } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, TaskError, type Logger } from '@slm-copilot/task-kit';
import type { FetchModelOptions, FetchResult, StatfsLike } from './options.js';
import type { RetryPolicy } from './retry.js';
import { StreamHash } from './tail-hasher.js';

const SHA256_RE = /^[0-9a-f]{64}$/;
const MiB = 1024 * 1024;

export const isRemote = (url: string) => /^(https?|ftp):\/\//i.test(url);

export interface Ctx {
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

/** Checks the options a caller can get wrong; returns the expected SHA-256 in lowercase. */
export function validateOptions(options: FetchModelOptions): string {
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

/** The context of one fetch of `dest` (absolute), and the timed phases it records into. */
export function createFetchContext(
  options: FetchModelOptions,
  dest: string,
  sha256: string,
  log: Logger,
): { ctx: Ctx; phases: FetchResult['phases'] } {
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
  return { ctx, phases };
}

/** Moves the partial file aside (to `.bad`) and forgets its hash. */
export async function setAside(ctx: Ctx): Promise<void> {
  await ctx.hash.restart();
  await rename(ctx.partial, ctx.bad);
}
