import { existsSync } from 'node:fs';
import { chmod, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { AppliancePaths } from '@slm-copilot/context-schema';
import { fetchModel, mirrorSources } from '@slm-copilot/model-fetch';
import { createLogger, ensureDir, ExitCode, sha256File, sh, TaskError, type Logger } from '@slm-copilot/task-kit';
import { localAiRelease, LOCALAI_VERSION } from './versions.js';

export interface InstallLocalAiOptions {
  paths: AppliancePaths;
  /** Directories or http(s) bases laid out as `<mirror>/<artifact-name>`, tried before upstream. */
  mirrors?: string[];
  /** false = offline profile: mirrors only. */
  upstream?: boolean;
  version?: string;
  log?: Logger;
}

export interface LocalAiInstall {
  version: string;
  binary: string;
  sha256: string;
  /** Where the expected checksum came from (the release's checksums file, by URL or mirror path). */
  checksumSource: string;
  backendRef: string;
  backendInstalled: 'installed' | 'present';
}

/** Reads a small text artifact from the first source that has it. */
async function fetchText(sources: string[], log: Logger): Promise<{ text: string; source: string }> {
  const failures: string[] = [];
  for (const source of sources) {
    try {
      if (/^https?:\/\//.test(source)) {
        const r = await fetch(source, { signal: AbortSignal.timeout(60_000) });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        return { text: await r.text(), source };
      }
      return { text: await readFile(source, 'utf8'), source };
    } catch (error) {
      failures.push(`${source}: ${(error as Error).message}`);
      log.debug(`not from ${source}: ${(error as Error).message}`);
    }
  }
  throw new TaskError(
    `could not fetch ${path.basename(sources[0] ?? '?')} from any source:\n  ${failures.join('\n  ')}`,
    {
      exitCode: ExitCode.network,
    },
  );
}

/** The sha256 of `asset` in a goreleaser checksums file (`<sha256>  <name>` lines). */
export function checksumFor(checksums: string, asset: string): string | undefined {
  for (const line of checksums.split('\n')) {
    const m = /^([0-9a-f]{64})\s+\*?(\S+)\s*$/i.exec(line.trim());
    if (m && m[2] === asset) return m[1]!.toLowerCase();
  }
  return undefined;
}

/**
 * Installs the pinned LocalAI binary (verified against the release's checksums file; never via
 * install.sh, which is broken for 3.9+) and its llama-cpp backend pinned by OCI tag — or from an
 * OCI tarball in a mirror (`ocifile://`) for offline builds. Idempotent.
 */
export async function installLocalAi(options: InstallLocalAiOptions): Promise<LocalAiInstall> {
  const log = options.log ?? createLogger();
  const release = localAiRelease(options.version ?? LOCALAI_VERSION);
  const mirrors = options.mirrors ?? [];
  const upstream = options.upstream ?? true;
  const sources = (name: string) => [
    ...mirrorSources(mirrors, name),
    ...(upstream ? [`${release.releaseBaseUrl}/${name}`] : []),
  ];
  if (sources('x').length === 0)
    throw new TaskError('no source for LocalAI: give a mirror or allow upstream', { exitCode: ExitCode.usage });

  const { text, source: checksumSource } = await log.phase(`fetch ${release.checksumsAsset}`, () =>
    fetchText(sources(release.checksumsAsset), log),
  );
  const sha256 = checksumFor(text, release.binaryAsset);
  if (!sha256) {
    throw new TaskError(`${checksumSource} lists no checksum for ${release.binaryAsset}`, {
      exitCode: ExitCode.integrity,
    });
  }

  const binary = options.paths.engine.localaiBinary;
  if (existsSync(binary) && (await sha256File(binary)) === sha256) {
    log.info(`LocalAI ${release.version} already installed at ${binary} (sha256 verified)`);
  } else {
    await ensureDir(path.dirname(binary));
    const staged = `${binary}.download`;
    await log.phase(`download ${release.binaryAsset}`, () =>
      fetchModel({ urls: sources(release.binaryAsset), sha256, dest: staged, manifest: false, log }),
    );
    await chmod(staged, 0o755);
    await rename(staged, binary);
    log.info(`installed LocalAI ${release.version} at ${binary}`);
  }

  const backendDir = path.join(options.paths.engine.localaiBackendsDir, release.backendName);
  const tarballName = release.backendArchive;
  const localTarball = mirrors
    .map((m) => path.join(m, tarballName))
    .find((p) => !/^[a-z]+:\/\//i.test(p) && existsSync(p));
  const backendRef = localTarball ? `ocifile://${localTarball}` : `oci://${release.backendImage}`;
  if (existsSync(backendDir)) {
    log.info(`llama-cpp backend already present in ${backendDir}`);
    return { version: release.version, binary, sha256, checksumSource, backendRef, backendInstalled: 'present' };
  }
  if (!localTarball && !upstream) {
    throw new TaskError(`offline install needs ${tarballName} in a mirror directory`, { exitCode: ExitCode.usage });
  }
  await ensureDir(options.paths.engine.localaiBackendsDir);
  await log.phase(`install backend ${backendRef}`, async () => {
    const backendsPath = options.paths.engine.localaiBackendsDir;
    const r = await sh({
      nothrow: true,
    })`${binary} backends install ${backendRef} ${release.backendName} --backends-path ${backendsPath}`;
    if (r.exitCode !== 0 || !existsSync(backendDir)) {
      await rm(backendDir, { recursive: true, force: true });
      throw new TaskError(
        `installing the llama-cpp backend from ${backendRef} failed (exit ${r.exitCode}): ` +
          r.stderr.trim().split('\n').slice(-5).join('\n'),
        {
          exitCode: ExitCode.failure,
        },
      );
    }
  });
  return { version: release.version, binary, sha256, checksumSource, backendRef, backendInstalled: 'installed' };
}

/** What installLlamaServer put in place. */
export interface LlamaServerInstall {
  /** `paths.engine.llamaServerBinary` (what the unit runs). */
  binary: string;
  /** sha256 of the archive installed. */
  sha256: string;
  /** CPU backend modules shipped beside the binary (`bin/libggml-cpu-<variant>.so`), e.g. haswell … zen4. */
  variants: string[];
}

/**
 * Installs the llama-server runtime — the runtime-dispatching llama.cpp build packed by the test
 * bed's `ensureLlamaRuntime` (`bin/llama-server`, `bin/libggml-cpu-<variant>.so`, `lib/*.so.0`) —
 * into the directory above the binary's `bin/` (`/opt/llama.cpp`). The archive is extracted beside
 * it, checked (`bin/llama-server --version`, at least one CPU module), then swapped in by rename:
 * a failed install leaves the previous one untouched and no staging directory behind.
 * `expectSha256`: refuse an archive whose sha256 differs (the caller's verified digest).
 */
export async function installLlamaServer(
  archive: string,
  paths: AppliancePaths,
  log: Logger = createLogger(),
  opts: { expectSha256?: string } = {},
): Promise<LlamaServerInstall> {
  if (!existsSync(archive) || !(await stat(archive)).isFile()) {
    throw new TaskError(
      `no llama-server runtime archive at ${archive} (expected llama-server-<release>-dispatch.tar.xz)`,
      { exitCode: ExitCode.usage },
    );
  }
  const sha256 = await sha256File(archive);
  if (opts.expectSha256 && opts.expectSha256 !== sha256) {
    throw new TaskError(`${archive}: sha256 ${sha256}, expected ${opts.expectSha256}`, {
      exitCode: ExitCode.integrity,
    });
  }
  const binary = paths.engine.llamaServerBinary;
  const root = path.dirname(path.dirname(binary));
  if (path.basename(path.dirname(binary)) !== 'bin') {
    throw new TaskError(
      `llamaServerBinary ${binary} is not inside a bin/ directory; the runtime archive installs <dir>/bin + <dir>/lib`,
      { exitCode: ExitCode.invalidConfig },
    );
  }
  const rel = path.relative(root, binary);
  const staged = `${root}.new-${process.pid}`;
  const old = `${root}.old-${process.pid}`;
  await rm(staged, { recursive: true, force: true });
  await ensureDir(staged, 0o755);
  try {
    const x = await sh({ nothrow: true })`tar -xJf ${archive} -C ${staged} --no-same-owner`;
    if (x.exitCode !== 0)
      throw new TaskError(`cannot extract ${archive}: ${x.stderr.trim()}`, { exitCode: ExitCode.failure });
    if (!existsSync(path.join(staged, rel)))
      throw new TaskError(`${archive} has no ${rel}`, { exitCode: ExitCode.failure });
    // one-apps runs stages under umask 0077: the engine's user must read and execute all of it
    await sh`chmod -R u+rwX,go+rX,go-w ${staged}`;
    const variants = (await readdir(path.join(staged, 'bin')))
      .map((f) => /^libggml-cpu-(.+)\.so$/.exec(f)?.[1])
      .filter((v): v is string => !!v)
      .sort();
    if (variants.length === 0)
      throw new TaskError(`${archive} has no bin/libggml-cpu-*.so: not a runtime-dispatching build`, {
        exitCode: ExitCode.failure,
      });
    const version = await sh({ nothrow: true, cwd: '/' })`${path.join(staged, rel)} --version`;
    if (version.exitCode !== 0) {
      throw new TaskError(`${rel} from ${archive} does not run (--version exit ${version.exitCode})`, {
        exitCode: ExitCode.environment,
        hint: version.stderr.trim().split('\n').at(-1),
      });
    }
    await rm(old, { recursive: true, force: true });
    if (existsSync(root)) await rename(root, old);
    await rename(staged, root);
    await rm(old, { recursive: true, force: true });
    const v = (version.stdout + version.stderr).match(/version: \S+/)?.[0] ?? 'version unknown';
    log.info(`installed llama-server (${v}; CPU modules ${variants.join(', ')}) at ${binary}`);
    return { binary, sha256, variants };
  } finally {
    await rm(staged, { recursive: true, force: true });
  }
}
