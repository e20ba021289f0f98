import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { copyFile, mkdir, open, readFile, rename, rm, stat, statfs as fsStatfs, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { $, which } from 'zx';
import { createLogger, ExitCode, formatDuration, TaskError, type Logger } from '@slm-copilot/task-kit';
import { buildManifest, readManifest, sha256OfFile, verifySampled, writeManifest, type ModelManifest } from './manifest.js';

/** How the SHA-256 is computed: while wget writes (reading the new bytes back from the page cache), or after it finished. */
export type HashMode = 'stream' | 'after';

export interface StatfsLike {
  bavail: number | bigint;
  bsize: number | bigint;
}

export interface FetchModelOptions {
  /** Sources tried in order: mirrors first, then upstream. http(s):// URLs go through wget; a local path (or file://) is copied. */
  urls: string[];
  /** Expected SHA-256 (hex). Nothing that does not match it is ever installed at `dest`. */
  sha256: string;
  /** Expected size in bytes: enables the exact free-space check and catches wrong files before hashing. */
  size?: number;
  /** Where the verified model goes; `<dest>.partial` is the download, `<dest>.manifest.json` the manifest. */
  dest: string;
  log?: Logger;
  /** wget --tries per source (default 5): reconnects after a dropped connection, continuing with a Range request. */
  tries?: number;
  /** wget --timeout in seconds (DNS, connect and read; default 60). */
  timeoutSec?: number;
  /** wget --waitretry in seconds (default 10). */
  waitRetrySec?: number;
  /** auto (default): a progress bar on a TTY, `dot:giga` lines otherwise. */
  progress?: 'auto' | 'bar' | 'dot' | 'none';
  /** Extra free space required beyond the bytes still to download (default 64 MiB). */
  marginBytes?: number;
  /** Injectable for tests; default `fs.statfs`. */
  statfs?: (dir: string) => Promise<StatfsLike>;
  /** Default 'stream' (measured faster: see bench/fetch-vs-wget.ts). */
  hashMode?: HashMode;
  /** Write `<dest>.manifest.json` (default true). */
  manifest?: boolean;
  /** wget binary (default: `wget` on PATH). */
  wget?: string;
}

export interface FetchResult {
  dest: string;
  sha256: string;
  bytes: number;
  /** The source the bytes came from; null when `dest` was already in place. */
  source: string | null;
  /** False when `dest` was already verified (no network I/O at all). */
  downloaded: boolean;
  manifest: ModelManifest | null;
  /** Phase durations in ms, in order. */
  phases: Array<{ name: string; ms: number }>;
}

/** Why one source failed (also used to pick the exit code). */
export type FailureKind =
  | 'not-found'
  | 'http'
  | 'auth'
  | 'dns'
  | 'refused'
  | 'timeout'
  | 'dropped'
  | 'tls'
  | 'disk-full'
  | 'io'
  | 'no-resume'
  | 'killed'
  | 'checksum'
  | 'network'
  | 'unknown';

export interface SourceFailure {
  url: string;
  kind: FailureKind;
  cause: string;
}

const SHA256_RE = /^[0-9a-f]{64}$/;
const MiB = 1024 * 1024;

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** Sources for one artifact: `<mirror>/<name>` for each mirror (directory or http(s) base), in order. */
export function mirrorSources(mirrors: readonly string[], name: string): string[] {
  return mirrors.map((m) => (/^[a-z]+:\/\//i.test(m) && !m.startsWith('file://') ? `${m.replace(/\/+$/, '')}/${encodeURIComponent(name)}` : path.join(m.startsWith('file://') ? fileURLToPath(m) : m, name)));
}

const isRemote = (url: string) => /^(https?|ftp):\/\//i.test(url);

/** Maps wget's exit status and messages (run with LC_ALL=C) to a cause a user can act on. */
export function classifyWgetFailure(exitCode: number | null, signal: string | null, stderr: string): { kind: FailureKind; cause: string } {
  if (signal) return { kind: 'killed', cause: `wget was killed by ${signal}` };
  const httpErrors = [...stderr.matchAll(/ERROR (\d{3}): ([^\n]*?)\.?\s*$/gm)];
  const last = httpErrors.at(-1);
  if (/No space left on device/.test(stderr)) return { kind: 'disk-full', cause: 'disk full (No space left on device)' };
  if (/Cannot write to/.test(stderr)) {
    const m = /Cannot write to .*?\((.*)\)/.exec(stderr);
    return { kind: 'io', cause: `cannot write the download${m ? ` (${m[1]})` : ''}` };
  }
  if (/Refusing to truncate existing file|conflicts with [`'‘]-c/.test(stderr)) {
    return { kind: 'no-resume', cause: 'the server ignored the Range request, so the partial download cannot be continued' };
  }
  if (last) {
    const status = Number(last[1]);
    const text = `HTTP ${status} ${last[2]!.trim()}`;
    if (status === 404 || status === 410) return { kind: 'not-found', cause: `${text} (no such file there)` };
    if (status === 401 || status === 403) return { kind: 'auth', cause: `${text} (gated or private)` };
    return { kind: 'http', cause: text };
  }
  if (/unable to resolve host address|Name or service not known|Temporary failure in name resolution|No address associated with hostname/.test(stderr)) {
    const host = /unable to resolve host address [‘'`"]?([^’'"\s]+)/.exec(stderr)?.[1];
    return { kind: 'dns', cause: `DNS lookup failed${host ? ` for ${host}` : ''}` };
  }
  if (/Connection refused/.test(stderr)) return { kind: 'refused', cause: 'connection refused (nothing listening there)' };
  if (/timed out/i.test(stderr)) return { kind: 'timeout', cause: 'timed out (no data within --timeout)' };
  if (/Connection closed at byte|Connection reset by peer|Read error at byte/.test(stderr)) {
    return { kind: 'dropped', cause: 'the connection kept dropping; gave up after --tries attempts (the partial download is kept)' };
  }
  if (/ERROR: cannot verify|certificate|SSL|TLS|GnuTLS/i.test(stderr) || exitCode === 5) return { kind: 'tls', cause: 'TLS verification failed' };
  if (exitCode === 4) return { kind: 'network', cause: 'network failure' };
  const lastLine = stderr.trim().split('\n').filter((l) => l.trim()).at(-1) ?? '';
  return { kind: 'unknown', cause: `wget exited with ${exitCode}${lastLine ? `: ${lastLine.trim()}` : ''}` };
}

/**
 * Hashes a file that another process is appending to (wget -c), reading the new bytes back while
 * they are still in the page cache. If the file ever shrinks or is replaced, it reports `null` and
 * the caller hashes the finished file from scratch — it can be slower, never wrong.
 */
export class TailHasher {
  private readonly hash = createHash('sha256');
  private offset = 0;
  private broken = false;
  private stopped = false;
  private ino: number | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly file: string,
    private readonly chunkBytes = 8 * MiB,
  ) {}

  get hashedBytes(): number {
    return this.offset;
  }

  start(): this {
    this.loop = this.run();
    return this;
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    let fh: FileHandle | undefined;
    const buf = Buffer.allocUnsafe(this.chunkBytes);
    try {
      for (;;) {
        if (!fh) {
          try {
            fh = await open(this.file, 'r');
            this.ino = (await fh.stat()).ino;
          } catch {
            if (this.stopped) return;
            await this.idle(25);
            continue;
          }
        }
        const { size } = await fh.stat();
        if (size < this.offset) {
          this.broken = true;
          return;
        }
        if (size > this.offset) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - this.offset), this.offset);
          if (bytesRead === 0) {
            this.broken = true;
            return;
          }
          this.hash.update(buf.subarray(0, bytesRead));
          this.offset += bytesRead;
          continue;
        }
        if (this.stopped) return;
        await this.idle(20);
      }
    } catch {
      this.broken = true;
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /** Stops following, hashes what is left, and returns the digest — or null if it cannot be trusted. */
  async finish(): Promise<{ sha256: string; bytes: number } | null> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    if (this.broken) return null;
    try {
      const st = await stat(this.file);
      if (st.size !== this.offset || (this.ino !== undefined && st.ino !== this.ino)) return null;
    } catch {
      return null;
    }
    return { sha256: this.hash.digest('hex'), bytes: this.offset };
  }

  /** Stops without a result (the attempt failed). */
  async abandon(): Promise<void> {
    this.stopped = true;
    this.broken = true;
    this.wake?.();
    await this.loop;
  }
}

async function fileSize(file: string): Promise<number | null> {
  try {
    return (await stat(file)).size;
  } catch {
    return null;
  }
}

async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // not supported everywhere; the rename is still atomic
  } finally {
    await fh.close();
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A pid file next to the download so two fetches never append to the same partial file. */
async function acquireDownloadLock(lockFile: string, dest: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(lockFile, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return () => rm(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
        throw new TaskError(`another model-fetch (pid ${pid}) is already downloading ${dest}`, {
          exitCode: ExitCode.environment,
          hint: `wait for it, or remove ${lockFile} if that process is not model-fetch`,
        });
      }
      await rm(lockFile, { force: true }); // stale: its process is gone (killed, rebooted)
    }
  }
  throw new TaskError(`cannot take the download lock ${lockFile}`, { exitCode: ExitCode.environment });
}

let setprivPath: string | null | undefined;
async function findSetpriv(): Promise<string | null> {
  if (setprivPath === undefined) setprivPath = await which('setpriv', { nothrow: true });
  return setprivPath;
}

interface TransferOptions {
  url: string;
  partial: string;
  log: Logger;
  tries: number;
  timeoutSec: number;
  waitRetrySec: number;
  progress: 'bar' | 'dot' | 'none';
  wget: string;
}

/** One wget run: `wget -c -O <partial>`; resolves with a failure description, or null on success. */
async function runWget(o: TransferOptions): Promise<{ kind: FailureKind; cause: string } | null> {
  const args = [
    '--continue',
    `--output-document=${o.partial}`,
    `--tries=${o.tries}`,
    `--timeout=${o.timeoutSec}`,
    `--waitretry=${o.waitRetrySec}`,
    '--retry-on-http-error=429,500,502,503,504',
    '--no-hsts',
    `--progress=${o.progress === 'bar' ? 'bar:force:noscroll' : 'dot:giga'}`,
    o.url,
  ];
  // setpriv --pdeathsig: wget dies with us (even on SIGKILL), so an orphan never keeps appending.
  const setpriv = await findSetpriv();
  const argv = setpriv ? [setpriv, '--pdeathsig', 'KILL', o.wget, ...args] : [o.wget, ...args];
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C', COLUMNS: String(process.stderr.columns ?? 100) };
  const p = $({ quiet: true, nothrow: true, env })`exec ${argv}`;
  let tail = '';
  let line = '';
  p.stderr.on('data', (d: Buffer) => {
    const text = d.toString('utf8');
    tail = (tail + text).slice(-32_768);
    if (o.progress === 'bar') {
      process.stderr.write(text);
    } else if (o.progress === 'dot') {
      line += text;
      let nl: number;
      while ((nl = line.indexOf('\n')) >= 0) {
        const l = line.slice(0, nl).trimEnd();
        line = line.slice(nl + 1);
        if (l.trim()) o.log.info(l);
      }
    }
  });
  const out = await p;
  if (o.progress === 'dot' && line.trim()) o.log.info(line.trimEnd());
  if (out.exitCode === 0 && !out.signal) return null;
  return classifyWgetFailure(out.exitCode, out.signal, tail);
}

/**
 * Downloads (or copies) a model, resumably, and installs it only once its SHA-256 matches.
 *
 * - `dest` already verified (manifest with the same sha256/size, sampled hash intact): returns at
 *   once, without any network I/O.
 * - `<dest>.partial` left by an interrupted run (dropped connection, killed process, reboot) is
 *   continued with a Range request, from whichever source answers first.
 * - A checksum mismatch moves the file aside to `<dest>.bad` (kept for inspection) and retries that
 *   source once from scratch before moving on to the next one.
 */
export async function fetchModel(options: FetchModelOptions): Promise<FetchResult> {
  const log = options.log ?? createLogger();
  const sha256 = options.sha256.toLowerCase();
  if (!SHA256_RE.test(sha256)) throw new TaskError(`"${options.sha256}" is not a SHA-256 (64 hex digits)`, { exitCode: ExitCode.usage });
  if (options.urls.length === 0) throw new TaskError('no source URL given', { exitCode: ExitCode.usage });
  if (options.size !== undefined && (!Number.isSafeInteger(options.size) || options.size < 0)) {
    throw new TaskError(`invalid size ${options.size}`, { exitCode: ExitCode.usage });
  }
  const dest = path.resolve(options.dest);
  const dir = path.dirname(dest);
  const partial = `${dest}.partial`;
  const bad = `${dest}.bad`;
  const size = options.size;
  const margin = options.marginBytes ?? 64 * MiB;
  const statfs = options.statfs ?? ((d: string) => fsStatfs(d));
  const hashMode = options.hashMode ?? 'stream';
  const wantManifest = options.manifest ?? true;
  const progressOpt = options.progress ?? 'auto';
  const progress: 'bar' | 'dot' | 'none' = progressOpt === 'auto' ? (process.stderr.isTTY ? 'bar' : 'dot') : progressOpt;
  const phases: FetchResult['phases'] = [];
  const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await log.phase(name, fn);
    } finally {
      phases.push({ name, ms: Math.round(performance.now() - t0) });
    }
  };

  await mkdir(dir, { recursive: true });

  // 1. Already there? Then no network at all.
  const existing = await phase('check existing file', async () => {
    const destSize = await fileSize(dest);
    if (destSize === null) return null;
    const manifest = await readManifest(dest);
    if (manifest && manifest.sha256.toLowerCase() === sha256 && manifest.bytes === destSize && (size === undefined || size === destSize)) {
      const v = await verifySampled(dest, manifest);
      if (v.ok) return { manifest, bytes: destSize };
      log.warn(`${v.message}; downloading it again`);
      return null;
    }
    if (!manifest && (size === undefined || size === destSize)) {
      // No manifest (e.g. interrupted right after the install): a local hash decides, still without network.
      const actual = await sha256OfFile(dest);
      if (actual === sha256) {
        const m = wantManifest ? await buildManifest(dest, { sha256 }) : null;
        if (m) await writeManifest(dest, m);
        return { manifest: m, bytes: destSize };
      }
    }
    log.info(`${dest} exists but is not the requested file (sha256 ${sha256.slice(0, 12)}…); it is replaced only after the new one is verified`);
    return null;
  });
  if (existing) {
    log.info(`${dest} is already in place and verified (${formatBytes(existing.bytes)}, sha256 ${sha256.slice(0, 12)}…): nothing to download`);
    return { dest, sha256, bytes: existing.bytes, source: null, downloaded: false, manifest: existing.manifest, phases };
  }

  const wget = options.wget ?? (options.urls.some(isRemote) ? await which('wget', { nothrow: true }) : 'wget');
  if (wget === null) {
    throw new TaskError('the command "wget" is not installed', { exitCode: ExitCode.environment, hint: 'apt-get install -y wget' });
  }

  const release = await acquireDownloadLock(`${partial}.lock`, dest);
  try {
    const failures: SourceFailure[] = [];
    for (const url of options.urls) {
      for (let attempt = 1; attempt <= 2; attempt++) {
        let partialSize = (await fileSize(partial)) ?? 0;
        if (size !== undefined && partialSize > size) {
          await rename(partial, bad);
          log.warn(`${partial} is larger (${partialSize} bytes) than the expected ${size}: moved it aside to ${bad}, starting from scratch`);
          partialSize = 0;
        }

        // 2. Enough room for what is left (+ margin)?
        await phase('check free disk space', async () => {
          const st = await statfs(dir);
          const free = Number(st.bavail) * Number(st.bsize);
          const remaining = size === undefined ? 0 : size - partialSize;
          const needed = remaining + margin;
          if (size === undefined) log.warn(`size unknown: only the ${formatBytes(margin)} margin can be checked before downloading`);
          if (free < needed) {
            const badSize = await fileSize(bad);
            throw new TaskError(
              `not enough disk space in ${dir} for ${path.basename(dest)}: need ${needed} bytes (${formatBytes(needed)}: ${formatBytes(remaining)} still to download + ${formatBytes(margin)} margin), only ${free} bytes (${formatBytes(free)}) free`,
              {
                exitCode: ExitCode.environment,
                hint: badSize ? `${bad} (${formatBytes(badSize)}, a rejected download kept for inspection) can be removed` : 'free some space or grow the disk',
              },
            );
          }
          log.info(`disk: ${formatBytes(free)} free in ${dir}, ${formatBytes(needed)} needed`);
        });

        // 3. Transfer (unless the partial file is already complete), hashing as the bytes land.
        let digest: string | null = null;
        const complete = size !== undefined && partialSize === size;
        if (complete) {
          log.info(`${partial} already has all ${size} bytes: verifying it without downloading`);
        } else {
          const hasher = hashMode === 'stream' ? new TailHasher(partial).start() : undefined;
          const what = partialSize > 0 ? `resume ${url} at byte ${partialSize}` : `download ${url}`;
          let failure: { kind: FailureKind; cause: string } | null;
          try {
            failure = await phase(what, async () => {
              if (isRemote(url)) {
                return runWget({
                  url,
                  partial,
                  log: log.child('wget'),
                  tries: options.tries ?? 5,
                  timeoutSec: options.timeoutSec ?? 60,
                  waitRetrySec: options.waitRetrySec ?? 10,
                  progress,
                  wget,
                });
              }
              return copyLocal(url.startsWith('file://') ? fileURLToPath(url) : url, partial, size);
            });
          } catch (error) {
            await hasher?.abandon();
            throw error;
          }
          if (failure) {
            await hasher?.abandon();
            const f = { url, ...failure };
            failures.push(f);
            log.warn(`${url}: ${failure.cause}`);
            if (failure.kind === 'disk-full') {
              throw new TaskError(`${url}: ${failure.cause} while writing ${partial} (${(await fileSize(partial)) ?? 0} bytes so far, kept for resuming)`, {
                exitCode: ExitCode.environment,
                hint: `free space in ${dir}, then run again: the download continues where it stopped`,
              });
            }
            if (failure.kind === 'no-resume' && attempt === 1) {
              await rm(partial, { force: true });
              log.warn(`${url} cannot continue ${partial}: starting that source from scratch`);
              continue;
            }
            break; // next source
          }
          if (hasher) {
            const r = await phase('finish streamed SHA-256', () => hasher.finish());
            digest = r?.sha256 ?? null;
            if (!r) log.warn('the streamed hash could not follow the file; hashing it again from disk');
          }
        }

        // 4. Verify before anything is installed.
        const got = (await fileSize(partial)) ?? 0;
        if (size !== undefined && got !== size) {
          await rename(partial, bad);
          const cause = `size mismatch: got ${got} bytes, expected ${size}; moved aside to ${bad}`;
          failures.push({ url, kind: 'checksum', cause });
          log.warn(`${url}: ${cause}${attempt === 1 ? '; retrying it once from scratch' : ''}`);
          continue;
        }
        if (digest === null) digest = await phase('verify SHA-256', () => sha256OfFile(partial));
        if (digest !== sha256) {
          await rename(partial, bad);
          const cause = `checksum mismatch: got sha256 ${digest}, expected ${sha256}; the file was moved aside to ${bad}`;
          failures.push({ url, kind: 'checksum', cause });
          log.warn(`${url}: ${cause}${attempt === 1 ? '; retrying it once from scratch' : ''}`);
          continue;
        }

        // 5. Install: durable bytes, then an atomic rename, then the manifest.
        await phase('install', async () => {
          await fsyncFile(partial);
          await rename(partial, dest);
          await fsyncDir(dir);
          await rm(bad, { force: true });
        });
        const manifest = wantManifest
          ? await phase('write manifest', async () => {
              const m = await buildManifest(dest, { sha256, source: url });
              await writeManifest(dest, m);
              return m;
            })
          : null;
        const total = phases.reduce((a, p) => a + p.ms, 0);
        log.info(`${dest}: ${formatBytes(got)} verified (sha256 ${sha256.slice(0, 12)}…) from ${url} in ${formatDuration(total)}`);
        return { dest, sha256, bytes: got, source: url, downloaded: true, manifest, phases };
      }
    }
    const list = failures.map((f) => `  - ${f.url}: ${f.cause}`).join('\n');
    const allIntegrity = failures.length > 0 && failures.every((f) => f.kind === 'checksum');
    const partialLeft = await fileSize(partial);
    throw new TaskError(`could not fetch ${path.basename(dest)} from any of ${options.urls.length} source(s):\n${list}`, {
      exitCode: allIntegrity ? ExitCode.integrity : ExitCode.network,
      hint: partialLeft ? `${partialLeft} bytes are kept in ${partial}: running again continues from there` : undefined,
    });
  } finally {
    await release();
  }
}

/** A mirror directory on this machine: copy (the whole file; local copies are fast). */
async function copyLocal(src: string, partial: string, size: number | undefined): Promise<{ kind: FailureKind; cause: string } | null> {
  const srcSize = await fileSize(src);
  if (srcSize === null) return { kind: 'not-found', cause: 'no such file in the mirror directory' };
  if (size !== undefined && srcSize !== size) return { kind: 'checksum', cause: `the mirror's copy has ${srcSize} bytes, expected ${size}` };
  try {
    await copyFile(src, partial);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { kind: code === 'ENOSPC' ? 'disk-full' : 'io', cause: code === 'ENOSPC' ? 'disk full (No space left on device)' : `copy failed: ${(error as Error).message}` };
  }
  return null;
}
