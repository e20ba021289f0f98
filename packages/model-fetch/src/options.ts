// The public shape of fetchModel (options, result) and the small helpers callers use with it.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '@slm-copilot/task-kit';
import type { ModelManifest } from './manifest.js';
import type { FailureKind } from './wget.js';

/** How the SHA-256 is computed: while wget writes (reading the new bytes back from the page cache), or after. */
export type HashMode = 'stream' | 'after';

export interface StatfsLike {
  bavail: number | bigint;
  bsize: number | bigint;
}

export interface FetchModelOptions {
  /**
   * Sources tried in order, each at most once: mirrors first, then upstream. http(s):// go through
   * wget; a local path (or file://) is copied.
   */
  urls: string[];
  /** Expected SHA-256 (hex). Nothing that does not match it is ever installed at `dest`. */
  sha256: string;
  /** Expected size in bytes: enables the exact free-space check and catches wrong files before hashing. */
  size?: number;
  /**
   * Where the verified model goes; `<dest>.partial` is the download, `<dest>.manifest.json` the
   * manifest. A `*.gguf` dest must also parse as GGUF.
   */
  dest: string;
  log?: Logger;
  /** Attempts per source without progress (default 5): refused, reset, dropped, timeout, HTTP 408/429/5xx. */
  tries?: number;
  /** wget --timeout in seconds (DNS, connect and read; default 60). */
  timeoutSec?: number;
  /** Delay before the first retry in seconds (default 10), doubled for each further one up to `maxWaitRetrySec`. */
  waitRetrySec?: number;
  /** Longest delay between retries in seconds (default 60). */
  maxWaitRetrySec?: number;
  /** No retry starts later than this many seconds after the first attempt without progress (default 600). */
  retryWindowSec?: number;
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

export interface SourceFailure {
  url: string;
  kind: FailureKind;
  cause: string;
}

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
  return mirrors.map((m) =>
    /^[a-z]+:\/\//i.test(m) && !m.startsWith('file://')
      ? `${m.replace(/\/+$/, '')}/${encodeURIComponent(name)}`
      : path.join(m.startsWith('file://') ? fileURLToPath(m) : m, name),
  );
}
