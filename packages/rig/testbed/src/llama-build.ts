import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { $, type ProcessPromise } from 'zx';
import {
  buildAtomically,
  cacheRoot,
  defaultLogger,
  exists,
  formatDuration,
  hashKey,
  phase,
  type Logger,
} from './cache.js';
import { withLock } from './lock.js';
import { dispatchPasses, installDispatch, type BuildPass } from './llama-dispatch.js';

/** The npm package whose tarball carries llama.cpp's source as a git bundle. */
export const NODE_LLAMA_CPP_VERSION = '3.21.1';

/** Bump when the build procedure changes in a way the flags do not show. */
const BUILD_RECIPE = 1;

/**
 * 'avx2' / 'host': static builds for one CPU level ('host' is the host-native one the bench
 * compares against). 'dispatch': the shipped build, shared libraries + one CPU backend module per
 * CPU level chosen at run time (see llama-dispatch.ts).
 */
export type LlamaVariant = 'avx2' | 'host' | 'dispatch';
export const LLAMA_VARIANTS: readonly LlamaVariant[] = ['avx2', 'host', 'dispatch'];

/** Binaries built by {@link ensureLlamaBuild}. */
export const LLAMA_TARGETS = ['llama-server', 'llama-quantize', 'llama-bench'] as const;

export interface LlamaSource {
  /** llama.cpp source tree (a `git clone` of node-llama-cpp's `llama/gitRelease.bundle`). */
  srcDir: string;
  /** node-llama-cpp version the source came from. */
  version: string;
  /** llama.cpp release tag recorded by node-llama-cpp (`llama/binariesGithubRelease.json`). */
  release: string;
  /** Commit of the bundled tree. */
  commit: string;
}

export interface LlamaBuild extends LlamaSource {
  variant: LlamaVariant;
  binDir: string;
  llamaServer: string;
  llamaQuantize: string;
  llamaBench: string;
  /** Cache key (`<version>-<variant>-<hash of version + flags>`), also the directory name. */
  key: string;
  cmakeFlags: string[];
}

export interface LlamaBuildOptions {
  variant?: LlamaVariant;
  /** Parallel compile jobs (default: 2). */
  jobs?: number;
  /** Cache root (default `$SLM_COPILOT_CACHE` or `~/.cache/slm-copilot`). */
  cacheDir?: string;
  log?: Logger;
  /** Stream the compiler output to stderr as well as to build.log. */
  verbose?: boolean;
}

/**
 * CMake flags per variant. Option names checked against ggml/CMakeLists.txt and
 * CMakeLists.txt of the bundled tree (llama.cpp v0.4.0 / node-llama-cpp 3.21.1):
 * - `LLAMA_BUILD_UI=OFF` + `LLAMA_USE_PREBUILT_UI=OFF`: scripts/ui-assets.cmake then neither
 *   runs npm nor downloads dist.tar.gz from the Hugging Face bucket (the server gets an empty UI).
 * - `LLAMA_OPENSSL=OFF`: no TLS in the server (nginx terminates TLS); `LLAMA_BUILD_BORINGSSL` /
 *   `LLAMA_BUILD_LIBRESSL` (FetchContent from the internet) stay at their default OFF.
 * - `LLAMA_LLGUIDANCE=OFF` (ExternalProject from GitHub), `GGML_CPU_KLEIDIAI=OFF` (ARM only,
 *   FetchContent), `GGML_OPENMP_FETCH` is Windows-only: nothing else fetches at build time.
 * - `GGML_NATIVE=OFF` and the AMX options OFF: a native build enables ggml's AMX path on
 *   Sapphire Rapids and every quantized model segfaults (llama.cpp #20824).
 * - 'avx2' runs under QEMU TCG `-cpu max` (AVX2, no AVX-512); 'host' adds AVX-512 F/VBMI/VNNI/BF16.
 */
export function llamaCmakeFlags(variant: LlamaVariant): string[] {
  if (variant === 'dispatch') return dispatchPasses().flatMap((p) => p.flags);
  const on = (name: string) => `-D${name}=ON`;
  const off = (name: string) => `-D${name}=OFF`;
  const avx512 = ['GGML_AVX512', 'GGML_AVX512_VBMI', 'GGML_AVX512_VNNI', 'GGML_AVX512_BF16'];
  return [
    '-DCMAKE_BUILD_TYPE=Release',
    off('BUILD_SHARED_LIBS'),
    off('LLAMA_OPENSSL'),
    off('LLAMA_BUILD_UI'),
    off('LLAMA_USE_PREBUILT_UI'),
    off('LLAMA_LLGUIDANCE'),
    off('LLAMA_BUILD_TESTS'),
    off('LLAMA_BUILD_EXAMPLES'),
    on('LLAMA_BUILD_TOOLS'),
    on('LLAMA_BUILD_SERVER'),
    off('GGML_NATIVE'),
    off('GGML_CCACHE'),
    off('GGML_BACKEND_DL'),
    off('GGML_CPU_ALL_VARIANTS'),
    on('GGML_SSE42'),
    on('GGML_AVX'),
    on('GGML_AVX2'),
    on('GGML_FMA'),
    on('GGML_F16C'),
    on('GGML_BMI2'),
    off('GGML_AVX_VNNI'),
    ...avx512.map(variant === 'host' ? on : off),
    off('GGML_AMX_TILE'),
    off('GGML_AMX_INT8'),
    off('GGML_AMX_BF16'),
  ];
}

/** CPU flags (from /proc/cpuinfo) a variant's binaries need at run time. */
export const VARIANT_CPU_FLAGS: Record<LlamaVariant, string[]> = {
  avx2: ['avx', 'avx2', 'fma', 'f16c', 'bmi2'],
  host: ['avx', 'avx2', 'fma', 'f16c', 'bmi2', 'avx512f', 'avx512vbmi', 'avx512_vnni', 'avx512_bf16'],
  // its lowest CPU module is haswell
  dispatch: ['avx', 'avx2', 'fma', 'f16c', 'bmi2'],
};

/** cmake passes (flags + targets) of a variant: one for the static builds, two for 'dispatch'. */
export function llamaBuildPasses(variant: LlamaVariant): BuildPass[] {
  return variant === 'dispatch' ? dispatchPasses() : [{ flags: llamaCmakeFlags(variant), targets: [...LLAMA_TARGETS] }];
}

/** CPU flags the variant needs that this machine lacks (empty: it can run here). */
export async function missingCpuFlags(variant: LlamaVariant): Promise<string[]> {
  const info = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const line = info.split('\n').find((l) => l.startsWith('flags')) ?? '';
  const have = new Set(
    line
      .replace(/^flags\s*:/, '')
      .trim()
      .split(/\s+/),
  );
  return VARIANT_CPU_FLAGS[variant].filter((f) => !have.has(f));
}

function llamaCacheDir(cacheDir?: string): string {
  return join(cacheRoot(cacheDir), 'llama.cpp');
}

/**
 * Makes sure the llama.cpp source tree of node-llama-cpp@{@link NODE_LLAMA_CPP_VERSION}
 * is in the cache: `npm pack` (the tarball only, never installed), extract
 * `package/llama/gitRelease.bundle`, `git clone` it.
 */
export async function ensureLlamaSource(opts: Pick<LlamaBuildOptions, 'cacheDir' | 'log'> = {}): Promise<LlamaSource> {
  const log = opts.log ?? defaultLogger;
  const version = NODE_LLAMA_CPP_VERSION;
  const base = llamaCacheDir(opts.cacheDir);
  const srcDir = join(base, `src-${version}`);
  const infoFile = join(srcDir, '.testbed-source.json');
  const read = async (): Promise<LlamaSource> => {
    const info = JSON.parse(await readFile(infoFile, 'utf8')) as Omit<LlamaSource, 'srcDir'>;
    return { srcDir, ...info };
  };
  if (await exists(infoFile)) return read();
  const lockFile = join(cacheRoot(opts.cacheDir), 'locks', `llama-src-${version}.lock`);
  return withLock(
    lockFile,
    async () => {
      if (await exists(infoFile)) return read();
      const t0 = performance.now();
      const npmDir = join(cacheRoot(opts.cacheDir), 'npm');
      const tgz = join(npmDir, `node-llama-cpp-${version}.tgz`);
      if (!(await exists(tgz))) {
        await phase(log, `npm pack node-llama-cpp@${version}`, async () => {
          await mkdir(npmDir, { recursive: true });
          const tmpDir = join(npmDir, `.pack-${process.pid}`);
          await rm(tmpDir, { recursive: true, force: true });
          await mkdir(tmpDir, { recursive: true });
          try {
            await $({
              quiet: true,
              cwd: tmpDir,
            })`npm pack ${`node-llama-cpp@${version}`} --pack-destination ${tmpDir} --silent`;
            await $({ quiet: true })`mv ${join(tmpDir, `node-llama-cpp-${version}.tgz`)} ${tgz}`;
          } finally {
            await rm(tmpDir, { recursive: true, force: true });
          }
        });
      }
      const unpack = join(base, `.unpack-${process.pid}`);
      await rm(unpack, { recursive: true, force: true });
      try {
        await phase(log, 'extract llama/gitRelease.bundle', async () => {
          await mkdir(unpack, { recursive: true });
          await $({
            quiet: true,
          })`tar -xzf ${tgz} -C ${unpack} package/llama/gitRelease.bundle package/llama/binariesGithubRelease.json`;
        });
        const release = (
          JSON.parse(await readFile(join(unpack, 'package/llama/binariesGithubRelease.json'), 'utf8')) as {
            release: string;
          }
        ).release;
        await buildAtomically(srcDir, async (tmp) => {
          await phase(log, 'git clone the bundle', async () => {
            await $({
              quiet: true,
            })`git -c advice.detachedHead=false clone --quiet ${join(unpack, 'package/llama/gitRelease.bundle')} ${tmp}`;
          });
          const commit = (await $({ quiet: true, cwd: tmp })`git rev-parse HEAD`).stdout.trim();
          await writeFile(
            join(tmp, '.testbed-source.json'),
            JSON.stringify({ version, release, commit }, null, 2) + '\n',
          );
        });
      } finally {
        await rm(unpack, { recursive: true, force: true });
      }
      log(`llama.cpp source ready in ${formatDuration(performance.now() - t0)}: ${srcDir}`);
      return read();
    },
    { log, what: 'llama.cpp source' },
  );
}

/** The cache key of a variant's build: version, variant and a hash of the flags and recipe. */
export function llamaBuildKey(variant: LlamaVariant, version = NODE_LLAMA_CPP_VERSION): string {
  // the static variants keep their original key inputs (flags + targets), so their caches stay valid
  const inputs =
    variant === 'dispatch'
      ? llamaBuildPasses(variant).flatMap((p) => [...p.flags, '--target', ...p.targets])
      : [...llamaCmakeFlags(variant), ...LLAMA_TARGETS];
  return `${version}-${variant}-${hashKey([String(BUILD_RECIPE), version, variant, ...inputs], 10)}`;
}

function buildResult(src: LlamaSource, variant: LlamaVariant, key: string, dir: string): LlamaBuild {
  const binDir = join(dir, 'bin');
  return {
    ...src,
    variant,
    key,
    cmakeFlags: llamaCmakeFlags(variant),
    binDir,
    llamaServer: join(binDir, 'llama-server'),
    llamaQuantize: join(binDir, 'llama-quantize'),
    llamaBench: join(binDir, 'llama-bench'),
  };
}

/**
 * Builds (once, cached) `llama-server`, `llama-quantize` and `llama-bench` from the
 * llama.cpp source in node-llama-cpp's npm tarball.
 *
 * Cache: `<cache>/llama.cpp/<version>-<variant>-<flags hash>/{bin/,build.json,build.log}`.
 * Concurrent callers (parallel test workers, CLI runs) serialise on a flock; the
 * build happens in a temporary directory that is renamed into place when complete.
 */
export async function ensureLlamaBuild(opts: LlamaBuildOptions = {}): Promise<LlamaBuild> {
  const variant = opts.variant ?? 'dispatch';
  if (!LLAMA_VARIANTS.includes(variant))
    throw new Error(`unknown llama.cpp variant '${variant}' (expected ${LLAMA_VARIANTS.join(' or ')})`);
  const log = opts.log ?? defaultLogger;
  const jobs = opts.jobs ?? 2;
  const key = llamaBuildKey(variant);
  const dir = join(llamaCacheDir(opts.cacheDir), key);
  const manifest = join(dir, 'build.json');

  const src = await ensureLlamaSource({ cacheDir: opts.cacheDir, log });
  if (await exists(manifest)) return buildResult(src, variant, key, dir);

  const lockFile = join(cacheRoot(opts.cacheDir), 'locks', `llama-build-${key}.lock`);
  return withLock(
    lockFile,
    async () => {
      if (await exists(manifest)) return buildResult(src, variant, key, dir);
      await ensureBuildTools(log);
      const missing = await missingCpuFlags(variant);
      if (missing.length)
        log(`warning: this CPU lacks ${missing.join(', ')}; the '${variant}' binaries will build but not run here`);
      const t0 = performance.now();
      const flags = llamaCmakeFlags(variant);
      const durations: Record<string, number> = {};
      const timed = async (name: string, fn: () => Promise<void>) => {
        const s = performance.now();
        await phase(log, name, fn);
        durations[name] = Math.round(performance.now() - s);
      };
      log(`building llama.cpp ${src.release} (node-llama-cpp ${src.version}) variant '${variant}' -> ${dir}`);
      await buildAtomically(dir, async (tmp) => {
        const buildDir = join(tmp, 'cmake-build');
        const logFile = join(tmp, 'build.log');
        const logStream = createWriteStream(logFile);
        const verbose = !!opts.verbose;
        try {
          for (const [i, pass] of llamaBuildPasses(variant).entries()) {
            const sh = $({ quiet: true, nothrow: true });
            await timed(`cmake configure ${i + 1} (${variant})`, () =>
              runLogged(log, logStream, verbose, sh`cmake -S ${src.srcDir} -B ${buildDir} ${pass.flags}`),
            );
            await timed(`cmake build ${pass.targets.join(' ')} (${variant}, -j${jobs})`, () =>
              runLogged(
                log,
                logStream,
                verbose,
                sh`cmake --build ${buildDir} --config Release -j ${String(jobs)} --target ${pass.targets}`,
                true,
              ),
            );
          }
        } finally {
          await new Promise((r) => logStream.end(r));
        }
        await timed('install binaries', async () => {
          if (variant === 'dispatch') return installDispatch(buildDir, tmp);
          await mkdir(join(tmp, 'bin'), { recursive: true });
          for (const t of LLAMA_TARGETS) await copyFile(join(buildDir, 'bin', t), join(tmp, 'bin', t));
          await $({ quiet: true })`chmod 0755 ${LLAMA_TARGETS.map((t) => join(tmp, 'bin', t))}`;
          await rm(buildDir, { recursive: true, force: true });
        });
        let versionText = '';
        let libs: string[] = [];
        if (missing.length === 0) {
          await timed('smoke test (llama-server --version)', async () => {
            const v = await $({ quiet: true, nothrow: true })`${join(tmp, 'bin', 'llama-server')} --version`;
            versionText = (v.stdout + v.stderr).trim();
            if (v.exitCode !== 0) throw new Error(`llama-server --version exited ${v.exitCode}: ${versionText}`);
          });
        }
        const ldd = await $({ quiet: true, nothrow: true })`ldd ${join(tmp, 'bin', 'llama-server')}`;
        libs = ldd.stdout
          .split('\n')
          .map((l) => l.trim().split(/\s+/)[0] ?? '')
          .filter(Boolean);
        await writeFile(
          join(tmp, 'build.json'),
          JSON.stringify(
            {
              key,
              variant,
              nodeLlamaCppVersion: src.version,
              llamaCppRelease: src.release,
              commit: src.commit,
              cmakeFlags: flags,
              passes: llamaBuildPasses(variant),
              jobs,
              builtAt: new Date().toISOString(),
              durationsMs: durations,
              versionText,
              sharedLibraries: libs,
            },
            null,
            2,
          ) + '\n',
        );
      });
      log(`llama.cpp '${variant}' build ready in ${formatDuration(performance.now() - t0)}: ${join(dir, 'bin')}`);
      return buildResult(src, variant, key, dir);
    },
    { log, what: `llama.cpp ${variant} build` },
  );
}

/** Runs a zx process, streams its output to the build log, prints progress, throws with the tail on failure. */
async function runLogged(
  log: Logger,
  logStream: NodeJS.WritableStream,
  verbose: boolean,
  p: ProcessPromise,
  progress = false,
): Promise<void> {
  let lastPct = -1;
  let lastReport = 0;
  const onData = (d: Buffer) => {
    logStream.write(d);
    if (verbose) process.stderr.write(d);
    if (progress) {
      const all = [...d.toString().matchAll(/^\[\s*(\d+)%\]/gm)];
      const pct = all.length ? Number(all[all.length - 1]![1]) : -1;
      const now = performance.now();
      if (pct > lastPct && now - lastReport > 30_000) {
        lastReport = now;
        lastPct = pct;
        log(`  ... ${pct}%`);
      }
    }
  };
  p.stdout.on('data', onData);
  p.stderr.on('data', onData);
  const out = await p;
  if (out.exitCode !== 0) {
    const tail = out.stdall.split('\n').slice(-40).join('\n');
    throw new Error(`command failed (exit ${out.exitCode}): ${p.cmd}\n--- output tail ---\n${tail}`);
  }
}

/** cmake, g++, make and git must be present; as root, missing ones are installed with apt-get. */
export async function ensureBuildTools(log: Logger = defaultLogger): Promise<void> {
  const need: Record<string, string> = { cmake: 'cmake', 'g++': 'g++', make: 'make', git: 'git', flock: 'util-linux' };
  const missing: string[] = [];
  for (const [bin, pkg] of Object.entries(need)) {
    const r = await $({ quiet: true, nothrow: true })`command -v ${bin}`;
    if (r.exitCode !== 0) missing.push(pkg);
  }
  if (!missing.length) return;
  await aptInstall(missing, log);
}

/** Installs Debian packages when running as root; otherwise throws with the exact command to run. */
export async function aptInstall(pkgs: string[], log: Logger = defaultLogger): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error(`missing Debian packages; run: sudo apt-get install -y ${pkgs.join(' ')}`);
  }
  await phase(log, `apt-get install -y ${pkgs.join(' ')}`, async () => {
    const r = await $({
      quiet: true,
      nothrow: true,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    })`apt-get install -y ${pkgs}`;
    if (r.exitCode !== 0)
      throw new Error(`apt-get install -y ${pkgs.join(' ')} failed (exit ${r.exitCode}):\n${r.stderr.slice(-2000)}`);
  });
}
