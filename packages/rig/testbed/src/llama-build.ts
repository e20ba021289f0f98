import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exists, formatDuration, hashParts, withLock, type Logger } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { ensureBuildTools, runLogged } from './build-tools.js';
import { buildAtomically, cacheDirOf, testbedLogger, timed } from './cache.js';
import { dispatchPasses, installDispatch, type BuildPass } from './llama-dispatch.js';
import { ensureLlamaSource, llamaCacheDir, NODE_LLAMA_CPP_VERSION, type LlamaSource } from './llama-source.js';

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

/** The cache key of a variant's build: version, variant and a hash of the flags and recipe. */
export function llamaBuildKey(variant: LlamaVariant, version = NODE_LLAMA_CPP_VERSION): string {
  // the static variants keep their original key inputs (flags + targets), so their caches stay valid
  const inputs =
    variant === 'dispatch'
      ? llamaBuildPasses(variant).flatMap((p) => [...p.flags, '--target', ...p.targets])
      : [...llamaCmakeFlags(variant), ...LLAMA_TARGETS];
  return `${version}-${variant}-${hashParts([String(BUILD_RECIPE), version, variant, ...inputs], 10)}`;
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

/** One build's settings, shared by its steps. */
interface BuildJob {
  src: LlamaSource;
  variant: LlamaVariant;
  key: string;
  jobs: number;
  verbose: boolean;
  log: Logger;
  /** Phase durations (ms), kept in build.json. */
  durations: Record<string, number>;
}

/** The cmake passes of the variant into `buildDir`, their output in `<tmp>/build.log`. */
async function compile(job: BuildJob, tmp: string, buildDir: string): Promise<void> {
  const { log, variant, jobs, verbose, durations } = job;
  const logStream = createWriteStream(join(tmp, 'build.log'));
  try {
    for (const [i, pass] of llamaBuildPasses(variant).entries()) {
      const sh = $({ quiet: true, nothrow: true });
      await timed(log, durations, `cmake configure ${i + 1} (${variant})`, () =>
        runLogged(log, logStream, verbose, sh`cmake -S ${job.src.srcDir} -B ${buildDir} ${pass.flags}`),
      );
      const build = sh`cmake --build ${buildDir} --config Release -j ${String(jobs)} --target ${pass.targets}`;
      await timed(log, durations, `cmake build ${pass.targets.join(' ')} (${variant}, -j${jobs})`, () =>
        runLogged(log, logStream, verbose, build, true),
      );
    }
  } finally {
    await new Promise((r) => logStream.end(r));
  }
}

/** bin/ (and lib/ for 'dispatch') as the cache entry keeps them; the cmake tree is removed. */
async function install(job: BuildJob, tmp: string, buildDir: string): Promise<void> {
  await timed(job.log, job.durations, 'install binaries', async () => {
    if (job.variant === 'dispatch') return installDispatch(buildDir, tmp);
    await mkdir(join(tmp, 'bin'), { recursive: true });
    for (const t of LLAMA_TARGETS) await copyFile(join(buildDir, 'bin', t), join(tmp, 'bin', t));
    await $({ quiet: true })`chmod 0755 ${LLAMA_TARGETS.map((t) => join(tmp, 'bin', t))}`;
    await rm(buildDir, { recursive: true, force: true });
  });
}

/** `llama-server --version` (when this CPU can run it), its shared libraries, and build.json. */
async function writeManifest(job: BuildJob, tmp: string, canRun: boolean): Promise<void> {
  const server = join(tmp, 'bin', 'llama-server');
  let versionText = '';
  if (canRun) {
    await timed(job.log, job.durations, 'smoke test (llama-server --version)', async () => {
      const v = await $({ quiet: true, nothrow: true })`${server} --version`;
      versionText = (v.stdout + v.stderr).trim();
      if (v.exitCode !== 0) throw new Error(`llama-server --version exited ${v.exitCode}: ${versionText}`);
    });
  }
  const ldd = await $({ quiet: true, nothrow: true })`ldd ${server}`;
  const libs = ldd.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
  const { src, variant } = job;
  const manifest = {
    key: job.key,
    variant,
    nodeLlamaCppVersion: src.version,
    llamaCppRelease: src.release,
    commit: src.commit,
    cmakeFlags: llamaCmakeFlags(variant),
    passes: llamaBuildPasses(variant),
    jobs: job.jobs,
    builtAt: new Date().toISOString(),
    durationsMs: job.durations,
    versionText,
    sharedLibraries: libs,
  };
  await writeFile(join(tmp, 'build.json'), JSON.stringify(manifest, null, 2) + '\n');
}

/** Builds the variant into `dir` (atomically): tools, cmake passes, install, smoke test, manifest. */
async function buildInto(job: BuildJob, dir: string): Promise<void> {
  const { log, variant, src } = job;
  await ensureBuildTools(log);
  const missing = await missingCpuFlags(variant);
  if (missing.length)
    log.warn(`this CPU lacks ${missing.join(', ')}; the '${variant}' binaries will build but not run here`);
  const t0 = performance.now();
  log.info(`building llama.cpp ${src.release} (node-llama-cpp ${src.version}) variant '${variant}' -> ${dir}`);
  await buildAtomically(dir, async (tmp) => {
    const buildDir = join(tmp, 'cmake-build');
    await compile(job, tmp, buildDir);
    await install(job, tmp, buildDir);
    await writeManifest(job, tmp, missing.length === 0);
  });
  log.info(`llama.cpp '${variant}' build ready in ${formatDuration(performance.now() - t0)}: ${join(dir, 'bin')}`);
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
  const log = testbedLogger(opts.log);
  const key = llamaBuildKey(variant);
  const dir = join(llamaCacheDir(opts.cacheDir), key);
  const manifest = join(dir, 'build.json');

  const src = await ensureLlamaSource({ cacheDir: opts.cacheDir, log });
  if (await exists(manifest)) return buildResult(src, variant, key, dir);

  const lockFile = join(cacheDirOf(opts.cacheDir), 'locks', `llama-build-${key}.lock`);
  return withLock(
    lockFile,
    async () => {
      if (await exists(manifest)) return buildResult(src, variant, key, dir);
      const job = { src, variant, key, jobs: opts.jobs ?? 2, verbose: !!opts.verbose, log, durations: {} };
      await buildInto(job, dir);
      return buildResult(src, variant, key, dir);
    },
    { log, what: `llama.cpp ${variant} build` },
  );
}
