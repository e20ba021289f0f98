import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { appliancePaths, type AppliancePaths } from '@slm-copilot/context-schema';
import { installLlamaServer, installLocalAi, installLocalAiStandIn } from '@slm-copilot/localai-install';
import { fetchModel, manifestPath, mirrorSources } from '@slm-copilot/model-fetch';
import { renderNginxHardening } from '@slm-copilot/nginx-config';
import { aptFromMirror, applyFileSet, ensureDir, ExitCode, sh, TaskError, type Logger } from '@slm-copilot/task-kit';
import { stateFiles, writeJson, type InstalledImage } from './state.js';

/**
 * One file the install stage gets through the one artifact mechanism of every profile: the mirrors
 * first (directories or http(s) bases laid out as `<mirror>/<file>`), then `url` when upstream is
 * allowed; verified against `sha256` (and `size`) before it is used.
 */
export interface PlannedArtifact {
  file: string;
  sha256: string;
  size?: number;
  /** Upstream URL (production); null when only a mirror has it (the test artifacts, our own builds). */
  url: string | null;
}

/** What the image build hands to the install stage (written by scripts/build-image into the bundle). */
export interface BuildPlan {
  profile: 'production' | 'offline' | 'test';
  engineDefault: 'localai' | 'llama-server';
  /** Mirror locations inside the build VM (`<mirror>/<artifact-name>`), tried before upstream. */
  mirrors: string[];
  /** false: mirrors only (offline and test profiles). */
  upstream: boolean;
  model: PlannedArtifact;
  /**
   * LocalAI: the pinned release (production, offline), or — test profile only, because LocalAI
   * cannot be downloaded on our machines — a stand-in `local-ai` that cannot serve (named so in
   * the image), which makes the boot fall back to llama-server.
   */
  localai: { kind: 'release' } | { kind: 'stand-in' };
  /**
   * llama-server, in every profile: the runtime-dispatching build of the pinned llama.cpp source
   * (bin/llama-server + lib/*.so, one libggml-cpu-<variant>.so per CPU variant) as a .tar.xz.
   */
  llamaServer: PlannedArtifact;
  /** apt packages the appliance needs at run time (installed when missing; from the mirror offline). */
  aptPackages: string[];
}

/**
 * install (build time, inside the image): packages, engine, model, state directories — nothing
 * per-VM: no API key, no TLS key, no machine identity (those are made at first boot).
 */
export async function install(plan: BuildPlan, opts: { prefix: string; log: Logger }): Promise<InstalledImage> {
  const { log } = opts;
  const paths = appliancePaths(opts.prefix);
  // one-apps runs stages under umask 0077: give the directories the engine and nginx read explicit modes
  for (const dir of [paths.configDir, paths.modelsDir, paths.logDir]) await ensureDir(dir, 0o755);
  await ensureDir(paths.stateDir, 0o700);

  const missing: string[] = [];
  for (const p of plan.aptPackages) {
    if ((await sh({ nothrow: true })`dpkg-query -W -f=${'${Status}'} ${p}`).stdout.includes('install ok installed'))
      continue;
    missing.push(p);
  }
  if (missing.length > 0) {
    if (!plan.upstream) {
      // offline: the .debs come from the staged mirror (`<mirror>/apt/`), never from the network
      const mirror = plan.mirrors.find((m) => !/^[a-z]+:\/\//i.test(m));
      if (!mirror)
        throw new TaskError(`offline build, no mirror directory, and the base image lacks: ${missing.join(' ')}`, {
          exitCode: ExitCode.environment,
        });
      await log.phase(`apt packages from the mirror: ${missing.join(' ')}`, () =>
        aptFromMirror(mirror, missing, { log }),
      );
    } else
      await log.phase(`apt-get install ${missing.join(' ')}`, async () => {
        await sh({ env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })`apt-get update -qq`;
        await sh({
          env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        })`apt-get install -y -qq --no-install-recommends ${missing}`;
      });
  }

  const localai = await log.phase('LocalAI', () => installLocalAiFor(plan, paths, log));
  const llama = await log.phase('llama-server', () => installLlamaServerArtifact(plan, paths, log));

  // nginx.service is Debian's/Ubuntu's; our drop-in narrows it (capabilities, read-only system).
  await installServiceHardening(opts.prefix);

  const dest = path.join(paths.modelsDir, plan.model.file);
  const urls = artifactSources(plan, plan.model);
  const fetched = await log.phase(`model ${plan.model.file}`, () =>
    fetchModel({ urls, sha256: plan.model.sha256, size: plan.model.size, dest, log }),
  );
  // the engine runs as a dynamic user: the model and its manifest must be world-readable
  for (const f of [dest, manifestPath(dest)]) if (existsSync(f)) await chmod(f, 0o644);

  // Per-VM secrets are made at first boot; make sure none came in with the build.
  for (const secret of [paths.apiKeyFile, paths.tls.caKey, paths.tls.key]) await rm(secret, { force: true });
  if (existsSync(paths.tls.dir)) await rm(paths.tls.dir, { recursive: true, force: true });

  const installed: InstalledImage = {
    engineDefault: plan.engineDefault,
    model: { file: plan.model.file, sha256: plan.model.sha256, source: fetched.source },
    localai,
    llamaServer: llama,
    builtAt: new Date().toISOString(),
  };
  await writeJson(stateFiles(paths).installed, installed);
  log.info(`installed: ${JSON.stringify(installed)}`);
  return installed;
}

/** The sources of one planned artifact: the mirrors, then upstream when the profile allows it. */
export function artifactSources(plan: Pick<BuildPlan, 'mirrors' | 'upstream'>, artifact: PlannedArtifact): string[] {
  return [...mirrorSources(plan.mirrors, artifact.file), ...(plan.upstream && artifact.url ? [artifact.url] : [])];
}

/** LocalAI: the pinned release, or (test profile) the stand-in that cannot serve. */
type InstalledLocalAi = NonNullable<InstalledImage['localai']>;
type InstalledLlamaServer = NonNullable<InstalledImage['llamaServer']>;

async function installLocalAiFor(plan: BuildPlan, paths: AppliancePaths, log: Logger): Promise<InstalledLocalAi> {
  if (plan.localai.kind === 'stand-in') {
    const standIn = await installLocalAiStandIn(paths, log);
    return { version: 'stand-in', sha256: standIn.sha256, standIn: true };
  }
  const release = await installLocalAi({ paths, mirrors: plan.mirrors, upstream: plan.upstream, log });
  return { version: release.version, sha256: release.sha256, standIn: false };
}

/**
 * llama-server (every profile): the archive through the same mechanism as the model (mirrors, then
 * upstream; size and sha256 verified), into a temp dir, then unpacked and checked by
 * installLlamaServer.
 */
async function installLlamaServerArtifact(
  plan: BuildPlan,
  paths: AppliancePaths,
  log: Logger,
): Promise<InstalledLlamaServer> {
  const artifact = plan.llamaServer;
  const urls = artifactSources(plan, artifact);
  if (urls.length === 0) {
    throw new TaskError(`no source for ${artifact.file}: give a mirror or an upstream URL`, {
      exitCode: ExitCode.usage,
    });
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'slm-llama-server-'));
  try {
    const archive = path.join(dir, artifact.file);
    const { sha256, size } = artifact;
    const fetched = await fetchModel({ urls, sha256, size, dest: archive, manifest: false, log });
    // (variants: what installLlamaServer reports for the runtime-dispatching build)
    const installed: { sha256: string; variants?: string[] } = await installLlamaServer(archive, paths, log);
    return { sha256: installed.sha256, source: fetched.source ?? archive, variants: installed.variants ?? [] };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The gateway's systemd drop-in for nginx.service, under the root prefix; systemd reads it at the
 * next daemon-reload (bootstrap does one).
 */
export async function installServiceHardening(prefix: string): Promise<string> {
  const dropIn = renderNginxHardening({ systemdDir: appliancePaths(prefix).systemdDir });
  await ensureDir(path.dirname(dropIn.path), 0o755);
  await applyFileSet('/', [dropIn]);
  return dropIn.path;
}
