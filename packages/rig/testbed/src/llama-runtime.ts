import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { $ } from 'zx';
import { exists, formatDuration, sha256File, withLock, type Logger } from '@slm-copilot/task-kit';
import { buildAtomically, cacheDirOf, testbedLogger } from './cache.js';
import { DISPATCH_CPU_VARIANTS } from './cpu-variant.js';
import { ensureLlamaBuild, llamaBuildPasses, type LlamaBuild } from './llama-build.js';
import { localClosure } from './llama-dispatch.js';
import { assertSymbolVersions, elfFilesIn, TARGET_OSES } from './symbol-versions.js';

/**
 * The llama-server runtime the appliance installs: the 'dispatch' build packed as
 * `llama-server-<release>-dispatch.tar.xz` with
 *   bin/llama-server, bin/llama-bench, bin/libggml-cpu-<variant>.so  (the loader searches bin/)
 *   lib/libllama.so.0, lib/libggml.so.0, lib/libggml-base.so.0, lib/libmtmd.so.0 (RUNPATH $ORIGIN/../lib)
 *   llama-runtime.json (release, commit, variants, cmake passes)
 * Extract it anywhere (the appliance uses /opt/llama.cpp): it needs no other path.
 */
export interface LlamaRuntime {
  archive: string;
  sha256: string;
  size: number;
  /** CPU modules inside (e.g. haswell … zen4). */
  variants: string[];
  /** llama.cpp release tag of the source (node-llama-cpp's `binariesGithubRelease.json`). */
  release: string;
  commit: string;
}

export interface LlamaRuntimeOptions {
  cacheDir?: string;
  log?: Logger;
  /** Parallel compile jobs for the build, if it is not cached yet (default 2). */
  jobs?: number;
  verbose?: boolean;
}

/** Executables shipped (llama-quantize stays in the test bed: the appliance never quantizes). */
export const RUNTIME_BINARIES = ['llama-server', 'llama-bench'] as const;

/** The shipped files of the build under `stage/` (bin/, lib/, llama-runtime.json), symbol versions checked. */
async function stageRuntime(build: LlamaBuild, stage: string): Promise<void> {
  const buildRoot = join(build.binDir, '..');
  await mkdir(join(stage, 'bin'), { recursive: true });
  await mkdir(join(stage, 'lib'), { recursive: true });
  const variants = [...DISPATCH_CPU_VARIANTS];
  for (const f of [...RUNTIME_BINARIES, ...variants.map((v) => `libggml-cpu-${v}.so`)]) {
    await copyFile(join(build.binDir, f), join(stage, 'bin', f));
  }
  // only the libraries the shipped files need (not llama-quantize's)
  const roots = (await readdir(join(stage, 'bin'))).map((f) => join(stage, 'bin', f));
  for (const f of await localClosure(join(buildRoot, 'lib'), roots))
    await copyFile(join(buildRoot, 'lib', f), join(stage, 'lib', f));
  await $({ quiet: true })`chmod 0755 ${RUNTIME_BINARIES.map((b) => join(stage, 'bin', b))}`;
  // refuse to pack anything the target OSes cannot load
  const reqs = await assertSymbolVersions(await elfFilesIn([join(stage, 'bin'), join(stage, 'lib')]));
  const info = {
    release: build.release,
    commit: build.commit,
    nodeLlamaCppVersion: build.version,
    buildKey: build.key,
    variants,
    cmakePasses: llamaBuildPasses('dispatch'),
    symbolVersions: Object.fromEntries(reqs.map((r) => [r.file.slice(stage.length + 1), r.newest])),
    checkedAgainst: TARGET_OSES.map((o) => o.id),
  };
  await writeFile(join(stage, 'llama-runtime.json'), JSON.stringify(info, null, 2) + '\n');
}

/** Packs `stage/` reproducibly-ish: sorted names, no owners, the commit's time, single-threaded xz. */
async function pack(build: LlamaBuild, stage: string, archive: string, log: Logger): Promise<void> {
  const epoch = (await $({ quiet: true, cwd: build.srcDir })`git log -1 --format=%ct`).stdout.trim();
  await log.phase(`pack ${basename(archive)}`, async () => {
    const env = { ...process.env, XZ_OPT: '-6 -T1' };
    const owner = ['--owner=0', '--group=0', '--numeric-owner', `--mtime=@${epoch}`];
    await $({
      quiet: true,
      env,
      cwd: stage,
    })`tar --sort=name ${owner} --format=gnu -cJf ${archive} bin lib llama-runtime.json`;
  });
}

export async function ensureLlamaRuntime(opts: LlamaRuntimeOptions = {}): Promise<LlamaRuntime> {
  const log = testbedLogger(opts.log);
  const build = await ensureLlamaBuild({
    variant: 'dispatch',
    cacheDir: opts.cacheDir,
    log,
    jobs: opts.jobs,
    verbose: opts.verbose,
  });
  const dir = join(cacheDirOf(opts.cacheDir), 'llama.cpp', `runtime-${build.key}`);
  const manifest = join(dir, 'runtime.json');
  const read = async (): Promise<LlamaRuntime> => JSON.parse(await readFile(manifest, 'utf8')) as LlamaRuntime;
  if (await exists(manifest)) return read();
  return withLock(
    join(cacheDirOf(opts.cacheDir), 'locks', `llama-runtime-${build.key}.lock`),
    async () => {
      if (await exists(manifest)) return read();
      const t0 = performance.now();
      const name = `llama-server-${build.release}-dispatch.tar.xz`;
      await buildAtomically(dir, async (tmp) => {
        const stage = join(tmp, 'stage');
        await stageRuntime(build, stage);
        await pack(build, stage, join(tmp, name), log);
        await $({ quiet: true })`rm -rf ${stage}`;
        const result: LlamaRuntime = {
          archive: join(dir, name),
          sha256: await sha256File(join(tmp, name)),
          size: (await stat(join(tmp, name))).size,
          variants: [...DISPATCH_CPU_VARIANTS],
          release: build.release,
          commit: build.commit,
        };
        await writeFile(join(tmp, 'runtime.json'), JSON.stringify(result, null, 2) + '\n');
      });
      const r = await read();
      const size = `${(r.size / 1e6).toFixed(1)} MB`;
      log.info(`llama-server runtime ready in ${formatDuration(performance.now() - t0)}: ${r.archive} (${size})`);
      return r;
    },
    { log, what: 'llama-server runtime archive' },
  );
}
