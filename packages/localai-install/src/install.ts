import { existsSync } from 'node:fs';
import { chmod, copyFile, readFile, rename, rm, stat } from 'node:fs/promises';
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
  throw new TaskError(`could not fetch ${path.basename(sources[0] ?? '?')} from any source:\n  ${failures.join('\n  ')}`, {
    exitCode: ExitCode.network,
  });
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
  const sources = (name: string) => [...mirrorSources(mirrors, name), ...(upstream ? [`${release.releaseBaseUrl}/${name}`] : [])];
  if (sources('x').length === 0) throw new TaskError('no source for LocalAI: give a mirror or allow upstream', { exitCode: ExitCode.usage });

  const { text, source: checksumSource } = await log.phase(`fetch ${release.checksumsAsset}`, () => fetchText(sources(release.checksumsAsset), log));
  const sha256 = checksumFor(text, release.binaryAsset);
  if (!sha256) {
    throw new TaskError(`${checksumSource} lists no checksum for ${release.binaryAsset}`, { exitCode: ExitCode.integrity });
  }

  const binary = options.paths.engine.localaiBinary;
  if (existsSync(binary) && (await sha256File(binary)) === sha256) {
    log.info(`LocalAI ${release.version} already installed at ${binary} (sha256 verified)`);
  } else {
    await ensureDir(path.dirname(binary));
    const staged = `${binary}.download`;
    await log.phase(`download ${release.binaryAsset}`, () => fetchModel({ urls: sources(release.binaryAsset), sha256, dest: staged, manifest: false, log }));
    await chmod(staged, 0o755);
    await rename(staged, binary);
    log.info(`installed LocalAI ${release.version} at ${binary}`);
  }

  const backendDir = path.join(options.paths.engine.localaiBackendsDir, release.backendName);
  const tarballName = `local-ai-backends-${release.version}-cpu-llama-cpp.tar`;
  const localTarball = mirrors.map((m) => path.join(m, tarballName)).find((p) => !/^[a-z]+:\/\//i.test(p) && existsSync(p));
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
    const r = await sh({ nothrow: true })`${binary} backends install ${backendRef} ${release.backendName} --backends-path ${options.paths.engine.localaiBackendsDir}`;
    if (r.exitCode !== 0 || !existsSync(backendDir)) {
      await rm(backendDir, { recursive: true, force: true });
      throw new TaskError(`installing the llama-cpp backend from ${backendRef} failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').slice(-5).join('\n')}`, {
        exitCode: ExitCode.failure,
      });
    }
  });
  return { version: release.version, binary, sha256, checksumSource, backendRef, backendInstalled: 'installed' };
}

/**
 * Installs a llama-server binary (built from the pinned llama.cpp source) into the appliance,
 * atomically, after checking it runs.
 */
export async function installLlamaServer(from: string, paths: AppliancePaths, log: Logger = createLogger()): Promise<{ binary: string; sha256: string }> {
  if (!existsSync(from) || !(await stat(from)).isFile()) throw new TaskError(`no llama-server binary at ${from}`, { exitCode: ExitCode.usage });
  const version = await sh({ nothrow: true })`${from} --version`;
  if (version.exitCode !== 0) {
    throw new TaskError(`${from} --version failed (exit ${version.exitCode}); wrong CPU build?`, { exitCode: ExitCode.environment, hint: version.stderr.trim().split('\n').at(-1) });
  }
  const binary = paths.engine.llamaServerBinary;
  await ensureDir(path.dirname(binary));
  const staged = `${binary}.new`;
  await copyFile(from, staged);
  await chmod(staged, 0o755);
  await rename(staged, binary);
  const sha256 = await sha256File(binary);
  log.info(`installed llama-server (${(version.stdout + version.stderr).match(/version: \S+/)?.[0] ?? 'version unknown'}) at ${binary}`);
  return { binary, sha256 };
}
