import { stat } from 'node:fs/promises';
import path from 'node:path';
import {
  ExitCode,
  flagInt,
  flagList,
  flagSeconds,
  flagString,
  runCommand,
  runSubcommands,
  TaskError,
  UsageError,
} from '@slm-copilot/task-kit';
import { CATALOG, DEFAULT_MODEL_ID, findModel } from './catalog.js';
import { fetchModel, formatBytes, mirrorSources, type HashMode } from './fetch.js';
import { buildManifest, manifestPath, readManifest, verifyFull, verifySampled, writeManifest } from './manifest.js';
import { DEFAULT_HUB, lockedArtifact, resolveModel, writeLockEntries, type LockedArtifact } from './resolve.js';

const TOOL = 'model-fetch';

const [str, list, int, seconds] = [flagString, flagList, flagInt, flagSeconds];
const json = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

const fetchSpec = {
  name: `${TOOL} fetch`,
  summary: 'download a model resumably, verify its SHA-256, install it and write its manifest',
  usage:
    `${TOOL} fetch (--url U [--url U2 …] --sha256 H [--size N] | --lock artifacts.lock.json --artifact NAME) ` +
    '--dest FILE [--mirror DIR_OR_URL …]',
  options: {
    url: { type: 'string', multiple: true },
    sha256: { type: 'string' },
    size: { type: 'string' },
    dest: { type: 'string' },
    mirror: { type: 'string', multiple: true },
    name: { type: 'string' },
    lock: { type: 'string' },
    artifact: { type: 'string' },
    tries: { type: 'string' },
    timeout: { type: 'string' },
    'wait-retry': { type: 'string' },
    'retry-window': { type: 'string' },
    'margin-mb': { type: 'string' },
    'hash-mode': { type: 'string' },
    progress: { type: 'string' },
  },
  details:
    'Sources are tried in order: every --mirror (as <mirror>/<name>) first, then the --url values.\n' +
    'An interrupted download (dropped connection, killed process, reboot) is kept in <dest>.partial and\n' +
    'continued by the next run; a server that ignores Range is detected and the file restarts from 0.\n' +
    'Refused, reset, dropped and timed-out connections and HTTP 408/429/5xx are retried with exponential\n' +
    'backoff (--tries attempts without progress, within --retry-window). Nothing reaches <dest> before its\n' +
    'SHA-256 matches, and a <dest> ending in .gguf must also parse as GGUF. A mismatch is moved aside to\n' +
    '<dest>.bad and the next source is tried: no source is downloaded twice. When <dest> already matches,\n' +
    'nothing is downloaded. Prints a JSON summary on stdout.\n' +
    'Exit codes: 2 usage, 4 environment (disk space, wget missing), 5 network, 6 checksum.\n\n' +
    'Examples:\n' +
    `  ${TOOL} fetch --lock artifacts.lock.json --artifact ${DEFAULT_MODEL_ID} --dest /opt/models/model.gguf ` +
    '--mirror /srv/mirror\n' +
    `  ${TOOL} fetch --url https://example.org/m.gguf --sha256 <64 hex> --dest /tmp/m.gguf`,
} as const;

const fetchHelp = {
  url: 'source URL (repeatable; tried in the order given, after the mirrors)',
  sha256: 'expected SHA-256 of the file',
  size: 'expected size in bytes (exact free-space check)',
  dest: 'where the verified file goes',
  mirror: 'mirror directory or http(s) base URL (repeatable), tried before the URLs',
  name: 'name looked up in mirrors (default: the --artifact, else the file name of the first --url)',
  lock: 'take url, sha256 and size from this artifacts.lock.json …',
  artifact: '… entry (default: the --name, else the file name of --dest)',
  tries: 'attempts per source without progress (default 5; 1 = no retry)',
  timeout: 'wget --timeout in seconds (default 60)',
  'wait-retry': 'seconds before the first retry, doubled for each further one up to 60 (default 10)',
  'retry-window': 'no retry starts later than this many seconds after the first failed try (default 600)',
  'margin-mb': 'free space required beyond the download, MiB (default 64)',
  'hash-mode': 'stream (hash while downloading, default) or after',
  progress: 'auto (bar on a TTY, dot:giga lines otherwise), bar, dot or none',
};

/** What to fetch: the URLs, checksum and size from the flags, completed from the lock file. */
async function fetchTarget(values: Record<string, unknown>, dest: string) {
  let urls = list(values.url);
  let sha256 = str(values.sha256);
  let size = int(values.size, 'size');
  const lockPath = str(values.lock);
  let artifact: string | undefined;
  if (lockPath) {
    artifact = str(values.artifact) ?? str(values.name) ?? path.basename(dest);
    const a: LockedArtifact = await lockedArtifact(lockPath, artifact);
    urls = [...urls, a.url];
    sha256 ??= a.sha256;
    size ??= a.size;
  }
  if (urls.length === 0) throw new UsageError('give at least one --url (or --lock and --artifact)');
  if (!sha256) throw new UsageError('--sha256 is required (or --lock and --artifact)');
  // The conventions' mirror layout is <mirror>/<artifact-name>: the lock key when fetching from a lock.
  const name =
    str(values.name) ||
    artifact ||
    decodeURIComponent(new URL(urls[0]!, 'file:///').pathname.split('/').pop() ?? '') ||
    path.basename(dest);
  return { urls: [...mirrorSources(list(values.mirror), name), ...urls], sha256, size };
}

/** --hash-mode and --progress, checked before anything is fetched. */
function transferModes(values: Record<string, unknown>): { hashMode: HashMode; progress: 'auto' | 'bar' | 'dot' } {
  const hashMode = str(values['hash-mode']) ?? 'stream';
  if (hashMode !== 'stream' && hashMode !== 'after') {
    throw new UsageError(`--hash-mode must be stream or after, got "${hashMode}"`);
  }
  const progress = str(values.progress) ?? 'auto';
  if (!['auto', 'bar', 'dot', 'none'].includes(progress)) {
    throw new UsageError(`--progress must be auto, bar, dot or none, got "${progress}"`);
  }
  return { hashMode, progress: progress as 'auto' };
}

const fetchCmd = (argv: string[]) =>
  runCommand(fetchSpec, fetchHelp, argv, async ({ values, log }) => {
    const dest = str(values.dest);
    if (!dest) throw new UsageError('--dest is required');
    const { hashMode, progress } = transferModes(values);
    const retry = {
      tries: int(values.tries, 'tries'),
      timeoutSec: int(values.timeout, 'timeout'),
      waitRetrySec: seconds(values['wait-retry'], 'wait-retry'),
      retryWindowSec: seconds(values['retry-window'], 'retry-window'),
    };
    const marginMb = int(values['margin-mb'], 'margin-mb');
    const target = await fetchTarget(values, dest);
    const result = await fetchModel({
      ...target,
      dest,
      log,
      ...retry,
      marginBytes: marginMb === undefined ? undefined : marginMb * 1024 * 1024,
      hashMode,
      progress: values.quiet ? 'none' : progress,
    });
    const { sha256, bytes, source, downloaded, phases } = result;
    json({ dest: result.dest, sha256, bytes, source, downloaded, phases });
  });

const catalogCmd = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} catalog`,
      summary: 'list the models this package knows',
      usage: `${TOOL} catalog [--json]`,
      options: { json: { type: 'boolean', default: false } },
      details:
        'Checksums and sizes are not in the catalog: "resolve" reads them from the hub at build time.\n\n' +
        `Examples:\n  ${TOOL} catalog\n  ${TOOL} catalog --json`,
    },
    { json: 'print the entries as JSON' },
    argv,
    async ({ values }) => {
      if (values.json) return void json(CATALOG);
      const rows = CATALOG.map((e) => [
        `${e.id}${e.id === DEFAULT_MODEL_ID ? ' (default)' : ''}`,
        `~${e.approxSizeGB} GB`,
        e.quantization,
        e.verified ? 'checked' : 'NOT CHECKED',
        `${e.repo}/${e.file}`,
      ]);
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows)
        process.stdout.write(`${r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]!) : c)).join('  ')}\n`);
    },
  );

const resolveCmd = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} resolve`,
      summary:
        'pin a catalog model to a hub commit and record its SHA-256 and size ' +
        "(from the hub's LFS metadata) in a lock file",
      usage:
        `${TOOL} resolve --model ID [--model ID2 …] --lock artifacts.lock.json ` +
        '[--hub URL] [--revision REV] [--name KEY]',
      options: {
        model: { type: 'string', multiple: true },
        lock: { type: 'string' },
        hub: { type: 'string' },
        revision: { type: 'string' },
        name: { type: 'string' },
      },
      details:
        `Reads GET <hub>/api/models/<repo>/revision/<rev> (commit id) and GET <hub>/api/models/<repo>/tree/<commit>\n` +
        '(lfs.oid = SHA-256, lfs.size). Set HF_TOKEN for gated repositories (never logged).\n\n' +
        `Examples:\n  ${TOOL} resolve --model ${DEFAULT_MODEL_ID} --lock artifacts.lock.json`,
    },
    {
      model: `catalog id (repeatable; see ${TOOL} catalog)`,
      lock: 'the artifacts.lock.json to update (created if missing)',
      hub: `hub base URL (default ${DEFAULT_HUB})`,
      revision: "branch, tag or commit (default: the catalog entry's, usually main)",
      name: 'lock key (default: the model id; only with one --model)',
    },
    argv,
    async ({ values, log }) => {
      const ids = list(values.model);
      const lock = str(values.lock);
      if (ids.length === 0 || !lock) throw new UsageError('--model and --lock are required');
      if (str(values.name) && ids.length > 1) throw new UsageError('--name only works with a single --model');
      const entries: Record<string, LockedArtifact> = {};
      const printed: Record<string, unknown> = {};
      for (const id of ids) {
        const resolved = await log.phase(`resolve ${id}`, () =>
          resolveModel(findModel(id), { hub: str(values.hub), revision: str(values.revision), log }),
        );
        const key = str(values.name) ?? id;
        const { url, version, size, sha256, checksumSource, resolvedAt, repo, file } = resolved;
        entries[key] = { url, version, size, sha256, checksumSource, resolvedAt, repo, file };
        printed[key] = entries[key];
      }
      const changed = await writeLockEntries(lock, entries);
      log.info(`${lock}: ${changed ? 'updated' : 'unchanged'}`);
      json(printed);
    },
  );

const inspectCmd = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} inspect`,
      summary: 'print the manifest of a model: size, SHA-256, sampled hash and the GGUF header facts',
      usage: `${TOOL} inspect FILE [--write]`,
      options: { write: { type: 'boolean', default: false } },
      allowPositionals: true,
      details:
        'Uses <FILE>.manifest.json when it exists and still matches the file (size + sampled hash);\n' +
        'otherwise reads the file (a full SHA-256: minutes for a 14 GB model).\n\n' +
        `Examples:\n  ${TOOL} inspect /opt/slm-copilot/models/model.gguf\n  ${TOOL} inspect model.gguf --write`,
    },
    { write: 'write the manifest beside the file when it was (re)built' },
    argv,
    async ({ values, positionals, log }) => {
      const file = positionals[0];
      if (!file || positionals.length > 1) throw new UsageError('give exactly one FILE');
      await stat(file).catch(() => {
        throw new TaskError(`${file} does not exist`, { exitCode: ExitCode.environment });
      });
      const existing = await readManifest(file);
      if (existing && (await verifySampled(file, existing)).ok) return void json(existing);
      if (existing) log.warn(`${manifestPath(file)} no longer matches the file: rebuilding it`);
      const m = await log.phase(`read ${path.basename(file)}`, () => buildManifest(file));
      if (!m.gguf) log.warn(`${file} is not a GGUF file: the manifest has no model facts`);
      if (values.write) log.info(`wrote ${await writeManifest(file, m)}`);
      json(m);
    },
  );

const verifyCmd = (argv: string[]) =>
  runCommand(
    {
      name: `${TOOL} verify`,
      summary:
        'check a model against its manifest: size + sampled hash (16 MiB read), ' +
        "or every byte's SHA-256 with --full",
      usage: `${TOOL} verify FILE [--full]`,
      options: { full: { type: 'boolean', default: false } },
      allowPositionals: true,
      details:
        'Exit code 0 when it matches, 6 when it does not, 4 when there is no manifest.\n\n' +
        `Examples:\n  ${TOOL} verify model.gguf\n  ${TOOL} verify model.gguf --full`,
    },
    { full: 'hash the whole file (SHA-256) instead of the samples' },
    argv,
    async ({ values, positionals, log }) => {
      const file = positionals[0];
      if (!file || positionals.length > 1) throw new UsageError('give exactly one FILE');
      const m = await readManifest(file);
      if (!m) {
        throw new TaskError(`${file} has no manifest (${manifestPath(file)})`, {
          exitCode: ExitCode.environment,
          hint: `create it with: ${TOOL} inspect ${file} --write (or fetch the file with ${TOOL} fetch)`,
        });
      }
      const r = values.full ? await verifyFull(file, m) : await verifySampled(file, m);
      if (!r.ok)
        throw new TaskError(r.message, {
          exitCode: ExitCode.integrity,
          hint: `fetch it again (the bad copy can be moved aside)`,
        });
      const checked = r.checked === 'full' ? 'SHA-256 of all' : 'size + sampled hash of';
      log.info(`${file}: OK (${checked} ${formatBytes(m.bytes)}, ${Math.round(r.ms)} ms)`);
    },
  );

export function main(argv: string[]): Promise<number> {
  return runSubcommands(
    TOOL,
    'get a verified GGUF model: catalog, checksums from the hub, resumable download, manifest',
    {
      fetch: { summary: 'download, verify and install a model (resumable; mirrors first)', run: fetchCmd },
      catalog: { summary: 'list the known models', run: catalogCmd },
      resolve: { summary: "record a model's commit, SHA-256 and size in artifacts.lock.json", run: resolveCmd },
      inspect: { summary: "print a model's manifest (GGUF facts, hashes)", run: inspectCmd },
      verify: { summary: 'check a model against its manifest (sampled, or --full)', run: verifyCmd },
    },
    argv,
  );
}

process.exitCode = await main(process.argv.slice(2));
