import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { $ } from 'zx';
import {
  buildAtomically,
  cacheRoot,
  defaultLogger,
  exists,
  formatDuration,
  phase,
  sha256File,
  type Logger,
} from './cache.js';
import { DISPATCH_CPU_VARIANTS } from './cpu-variant.js';
import { ensureLlamaBuild, llamaBuildPasses } from './llama-build.js';
import { localClosure } from './llama-dispatch.js';
import { withLock } from './lock.js';
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

export async function ensureLlamaRuntime(opts: LlamaRuntimeOptions = {}): Promise<LlamaRuntime> {
  const log = opts.log ?? defaultLogger;
  const build = await ensureLlamaBuild({
    variant: 'dispatch',
    cacheDir: opts.cacheDir,
    log,
    jobs: opts.jobs,
    verbose: opts.verbose,
  });
  const dir = join(cacheRoot(opts.cacheDir), 'llama.cpp', `runtime-${build.key}`);
  const manifest = join(dir, 'runtime.json');
  const read = async (): Promise<LlamaRuntime> => JSON.parse(await readFile(manifest, 'utf8')) as LlamaRuntime;
  if (await exists(manifest)) return read();
  return withLock(
    join(cacheRoot(opts.cacheDir), 'locks', `llama-runtime-${build.key}.lock`),
    async () => {
      if (await exists(manifest)) return read();
      const t0 = performance.now();
      const name = `llama-server-${build.release}-dispatch.tar.xz`;
      await buildAtomically(dir, async (tmp) => {
        const stage = join(tmp, 'stage');
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
        const epoch = (await $({ quiet: true, cwd: build.srcDir })`git log -1 --format=%ct`).stdout.trim();
        await phase(log, `pack ${name}`, async () => {
          // reproducible-ish: sorted names, no owners, the commit's time, single-threaded xz
          const env = { ...process.env, XZ_OPT: '-6 -T1' };
          await $({
            quiet: true,
            env,
            cwd: stage,
          })`tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=${`@${epoch}`} --format=gnu -cJf ${join(tmp, name)} bin lib llama-runtime.json`;
        });
        await $({ quiet: true })`rm -rf ${stage}`;
        const archive = join(dir, name);
        const result: LlamaRuntime = {
          archive,
          sha256: await sha256File(join(tmp, name)),
          size: (await stat(join(tmp, name))).size,
          variants,
          release: build.release,
          commit: build.commit,
        };
        await writeFile(join(tmp, 'runtime.json'), JSON.stringify(result, null, 2) + '\n');
      });
      const r = await read();
      log(
        `llama-server runtime ready in ${formatDuration(performance.now() - t0)}: ${r.archive} (${(r.size / 1e6).toFixed(1)} MB)`,
      );
      return r;
    },
    { log, what: 'llama-server runtime archive' },
  );
}
