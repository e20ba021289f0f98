import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, TaskError, writeFileAtomic, type Logger } from '@slm-copilot/task-kit';
import { CATALOG, hubDownloadUrl, type CatalogEntry } from './catalog.js';

export const DEFAULT_HUB = 'https://huggingface.co';

/** One artifact in the repository's `artifacts.lock.json`. */
export interface LockedArtifact {
  url: string;
  /** For a hub model: the commit id the URL is pinned to. */
  version: string;
  size: number;
  sha256: string;
  /** Where the checksum came from (an upstream checksum source, never a guess). */
  checksumSource: string;
  resolvedAt: string;
  /** For a hub model: the repository (`owner/name`) and the file path in it. */
  repo?: string;
  file?: string;
  /** How the entry's values were established, when not by `model-fetch resolve` reading the hub. */
  provenance?: string;
}

export interface ArtifactsLock {
  artifacts: Record<string, LockedArtifact>;
  [key: string]: unknown;
}

/** One entry of `GET {hub}/api/models/{repo}/tree/{revision}` (the fields we use). */
export interface HubTreeEntry {
  type: 'file' | 'directory' | string;
  path: string;
  size: number;
  oid?: string;
  lfs?: { oid: string; size: number; pointerSize?: number };
}

export interface ResolveOptions {
  /** Hub base URL (default https://huggingface.co; tests pass a fake hub). */
  hub?: string;
  /** Overrides the entry's revision (branch, tag or commit). */
  revision?: string;
  /** Bearer token for gated/private repos (default: $HF_TOKEN). Never logged. */
  token?: string;
  fetch?: typeof fetch;
  log?: Logger;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
}

export interface ResolvedModel extends LockedArtifact {
  repo: string;
  file: string;
  /** The revision asked for (e.g. `main`) before it was pinned to `version`. */
  requestedRevision: string;
}

const COMMIT_RE = /^[0-9a-f]{40}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;

async function getJson(url: string, opts: ResolveOptions): Promise<{ body: unknown; next: string | undefined }> {
  const token = opts.token ?? process.env.HF_TOKEN;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(url, { headers, signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000) });
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    throw new TaskError(`cannot reach the model hub at ${url}: ${cause === 'TimeoutError' ? 'timed out' : cause}`, {
      exitCode: ExitCode.network,
      hint: 'check the network (or pass --hub for a hub mirror)',
      cause: error,
    });
  }
  if (!res.ok) {
    const detail = (await res.text().catch(() => '')).slice(0, 200).trim();
    throw new TaskError(`the model hub answered HTTP ${res.status} for ${url}${detail ? `: ${detail}` : ''}`, {
      exitCode: ExitCode.network,
      hint:
        res.status === 401 || res.status === 403
          ? 'a gated or private repository: set HF_TOKEN'
          : res.status === 404
            ? 'check the repository, revision and file name'
            : undefined,
    });
  }
  const link = res.headers.get('link') ?? '';
  const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link)?.[1];
  return { body: await res.json(), next };
}

/** Pins a branch or tag to its commit id with `GET {hub}/api/models/{repo}/revision/{rev}` (`sha`). */
export async function resolveCommit(repo: string, revision: string, opts: ResolveOptions = {}): Promise<string> {
  if (COMMIT_RE.test(revision)) return revision;
  const hub = (opts.hub ?? DEFAULT_HUB).replace(/\/+$/, '');
  const url = `${hub}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
  const { body } = await getJson(url, opts);
  const sha = (body as { sha?: unknown }).sha;
  if (typeof sha !== 'string' || !COMMIT_RE.test(sha)) {
    throw new TaskError(`the model hub's answer for ${url} has no commit id ("sha")`, { exitCode: ExitCode.integrity });
  }
  return sha;
}

/** Lists a repository folder at a revision, following `Link: <…>; rel="next"` pages. */
export async function listHubTree(
  repo: string,
  commit: string,
  dir: string,
  opts: ResolveOptions = {},
): Promise<HubTreeEntry[]> {
  const hub = (opts.hub ?? DEFAULT_HUB).replace(/\/+$/, '');
  let url: string | undefined = `${hub}/api/models/${repo}/tree/${encodeURIComponent(commit)}${dir ? `/${dir}` : ''}`;
  const entries: HubTreeEntry[] = [];
  for (let page = 0; url && page < 100; page++) {
    const { body, next } = await getJson(url, opts);
    if (!Array.isArray(body))
      throw new TaskError(`the model hub's answer for ${url} is not a list of files`, { exitCode: ExitCode.integrity });
    entries.push(...(body as HubTreeEntry[]));
    url = next ? new URL(next, url).toString() : undefined;
  }
  return entries;
}

/**
 * Resolves a catalog entry's SHA-256 and size from the hub's own LFS metadata (`lfs.oid` is the
 * SHA-256 of the file's content, `lfs.size` its size) at a revision pinned to a commit id, so the
 * URL and the checksum always describe the same bytes.
 */
export async function resolveModel(entry: CatalogEntry, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  const hub = (opts.hub ?? DEFAULT_HUB).replace(/\/+$/, '');
  const requestedRevision = opts.revision ?? entry.revision;
  const commit = await resolveCommit(entry.repo, requestedRevision, opts);
  const slash = entry.file.lastIndexOf('/');
  const dir = slash >= 0 ? entry.file.slice(0, slash) : '';
  const treeUrl = `${hub}/api/models/${entry.repo}/tree/${commit}${dir ? `/${dir}` : ''}`;
  const tree = await listHubTree(entry.repo, commit, dir, opts);
  const item = tree.find((e) => e.path === entry.file);
  if (!item) {
    const ggufs = tree.filter((e) => e.path.endsWith('.gguf')).map((e) => e.path);
    throw new TaskError(`${entry.repo}@${commit.slice(0, 12)} has no file ${entry.file}`, {
      exitCode: ExitCode.invalidConfig,
      hint: ggufs.length
        ? `GGUF files there: ${ggufs.slice(0, 8).join(', ')}${ggufs.length > 8 ? ', …' : ''}`
        : 'check the catalog entry',
    });
  }
  const oid = item.lfs?.oid?.toLowerCase();
  if (!item.lfs || !oid || !SHA256_RE.test(oid) || typeof item.lfs.size !== 'number') {
    throw new TaskError(`${entry.repo}/${entry.file} has no LFS SHA-256 in the hub's metadata (${treeUrl})`, {
      exitCode: ExitCode.integrity,
      hint: 'refusing to lock a model without an upstream checksum',
    });
  }
  if (typeof item.size === 'number' && item.size !== item.lfs.size) {
    throw new TaskError(
      `${entry.repo}/${entry.file}: the hub reports size ${item.size} but LFS size ${item.lfs.size}`,
      { exitCode: ExitCode.integrity },
    );
  }
  const resolved: ResolvedModel = {
    repo: entry.repo,
    file: entry.file,
    requestedRevision,
    url: hubDownloadUrl(hub, entry.repo, commit, entry.file),
    version: commit,
    size: item.lfs.size,
    sha256: oid,
    checksumSource: `${treeUrl} (lfs.oid)`,
    resolvedAt: new Date().toISOString(),
  };
  opts.log?.info(
    `${entry.id}: ${entry.repo}@${commit.slice(0, 12)} ${entry.file} — ${resolved.size} bytes, sha256 ${oid}`,
  );
  return resolved;
}

export async function readLock(lockPath: string): Promise<ArtifactsLock> {
  let text: string;
  try {
    text = await readFile(lockPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { artifacts: {} };
    throw new TaskError(`cannot read ${lockPath}: ${(error as Error).message}`, { exitCode: ExitCode.environment });
  }
  let lock: ArtifactsLock;
  try {
    lock = JSON.parse(text) as ArtifactsLock;
  } catch (error) {
    throw new TaskError(`${lockPath} is not valid JSON: ${(error as Error).message}`, {
      exitCode: ExitCode.invalidConfig,
    });
  }
  if (typeof lock !== 'object' || lock === null || typeof lock.artifacts !== 'object' || lock.artifacts === null) {
    throw new TaskError(`${lockPath} has no "artifacts" object`, { exitCode: ExitCode.invalidConfig });
  }
  return lock;
}

/**
 * The workspace command that runs model-fetch from the repository root, as typed
 * (pnpm runs it in the package directory).
 */
export const MODEL_FETCH_FROM_ROOT = 'pnpm --filter @slm-copilot/model-fetch exec tsx --conditions=source src/cli.ts';

/**
 * What to tell a user whose lock has no entry for catalog model `modelId`: the command, runnable as
 * typed from the repository root, that records it (it reads the hub, so it needs the internet).
 * `lockPath` is made absolute (the command runs in the package directory); by default the
 * repository's `artifacts.lock.json`.
 */
export function missingLockHint(modelId: string, lockPath?: string): string {
  const lock = lockPath ? path.resolve(lockPath) : '../../artifacts.lock.json';
  if (!CATALOG.some((e) => e.id === modelId)) {
    const known = CATALOG.map((e) => e.id).join(', ');
    return (
      `"${modelId}" is not a catalog model (known: ${known}); record its url, version, size, sha256 and ` +
      `checksumSource in ${lockPath ?? 'artifacts.lock.json'} by hand, from an upstream checksum`
    );
  }
  return (
    `record ${modelId}'s commit, size and SHA-256 from the model hub (needs the internet), ` +
    `from the repository root: ${MODEL_FETCH_FROM_ROOT} resolve --model ${modelId} --lock ${lock}`
  );
}

/** One locked artifact, or a clear error naming the lock and the missing name. */
export async function lockedArtifact(lockPath: string, name: string): Promise<LockedArtifact> {
  const lock = await readLock(lockPath);
  const a = lock.artifacts[name];
  if (!a || typeof a.url !== 'string' || typeof a.sha256 !== 'string' || !SHA256_RE.test(a.sha256)) {
    throw new TaskError(`${lockPath} has no resolved artifact "${name}"`, {
      exitCode: ExitCode.invalidConfig,
      hint: missingLockHint(name, lockPath),
    });
  }
  return a;
}

/**
 * Records artifacts in the lock at `lockPath` (created when missing), keeping every other entry
 * and key as they are; written atomically. Returns whether the file changed.
 */
export async function writeLockEntries(lockPath: string, entries: Record<string, LockedArtifact>): Promise<boolean> {
  const lock = await readLock(lockPath);
  for (const [name, a] of Object.entries(entries)) {
    const { url, version, size, sha256, checksumSource, resolvedAt, repo, file, provenance } = a;
    const before = lock.artifacts[name];
    // Keep the old timestamp when nothing else changed, so re-resolving does not churn the file.
    const same =
      before &&
      before.url === url &&
      before.version === version &&
      before.size === size &&
      before.sha256 === sha256 &&
      before.checksumSource === checksumSource;
    const extra = Object.fromEntries(Object.entries({ repo, file, provenance }).filter(([, v]) => v !== undefined));
    const at = same ? before.resolvedAt : resolvedAt;
    lock.artifacts[name] = { url, version, size, sha256, checksumSource, resolvedAt: at, ...extra };
  }
  return (await writeFileAtomic(lockPath, `${JSON.stringify(lock, null, 2)}\n`)) !== 'unchanged';
}
