import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { $ } from 'zx';
import { DISPATCH_CPU_VARIANTS } from './cpu-variant.js';
import { elfNeeded } from './elf.js';

/**
 * The runtime-dispatching llama.cpp build ('dispatch' variant): shared libraries, ggml's CPU
 * backend as one loadable module per CPU level (`GGML_BACKEND_DL` + `GGML_CPU_ALL_VARIANTS`),
 * chosen at start-up by each module's `ggml_backend_score()` (ggml/src/ggml-backend-reg.cpp).
 * Which modules we ship, and why not sapphirerapids (AMX): see cpu-variant.ts.
 */

/** Executables kept from the dispatch build (llama-quantize too: the test bed quantizes with it). */
export const DISPATCH_BINARIES = ['llama-server', 'llama-bench', 'llama-quantize'] as const;

/**
 * RUNPATH of every shipped ELF file: executables and CPU modules sit in bin/ (the backend loader
 * only searches the executable's directory and the current directory), the shared libraries in
 * lib/; `$ORIGIN` keeps the build tree (everything in bin/) working too.
 */
export const DISPATCH_RUNPATH = '$ORIGIN/../lib:$ORIGIN';

/** Flags common to both passes (see llamaCmakeFlags for the UI/OpenSSL/llguidance reasons). */
function baseFlags(): string[] {
  return [
    '-DCMAKE_BUILD_TYPE=Release',
    '-DBUILD_SHARED_LIBS=ON',
    '-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON',
    `-DCMAKE_INSTALL_RPATH=${DISPATCH_RUNPATH.replace(':', ';')}`,
    '-DLLAMA_OPENSSL=OFF',
    '-DLLAMA_BUILD_UI=OFF',
    '-DLLAMA_USE_PREBUILT_UI=OFF',
    '-DLLAMA_LLGUIDANCE=OFF',
    '-DLLAMA_BUILD_TESTS=OFF',
    '-DLLAMA_BUILD_EXAMPLES=OFF',
    '-DLLAMA_BUILD_TOOLS=ON',
    '-DLLAMA_BUILD_SERVER=ON',
    '-DGGML_NATIVE=OFF',
    '-DGGML_CCACHE=OFF',
    '-DGGML_BACKEND_DL=ON',
  ];
}

export interface BuildPass {
  flags: string[];
  targets: string[];
}

/**
 * Two cmake passes over one build tree. With GGML_BACKEND_DL the `ggml` target depends on every
 * backend module (`add_dependencies(ggml ...)`), so building llama-server with all 14 x86 variants
 * configured would compile all 14. Pass 1 (GGML_CPU_ALL_VARIANTS=ON) builds only our variant
 * modules (they need just ggml-base); pass 2 reconfigures without CPU modules and builds the tools
 * (ggml-base is unchanged, so not rebuilt); the modules of pass 1 stay in bin/.
 */
export function dispatchPasses(): BuildPass[] {
  return [
    {
      flags: [...baseFlags(), '-DGGML_CPU=ON', '-DGGML_CPU_ALL_VARIANTS=ON'],
      targets: DISPATCH_CPU_VARIANTS.map((v) => `ggml-cpu-${v}`),
    },
    { flags: [...baseFlags(), '-DGGML_CPU=OFF', '-DGGML_CPU_ALL_VARIANTS=OFF'], targets: [...DISPATCH_BINARIES] },
  ];
}

/** Library file names (DT_NEEDED) found in `dir`, reached from `roots`, transitively. */
export async function localClosure(dir: string, roots: string[]): Promise<string[]> {
  const present = new Set(await readdir(dir));
  const seen = new Set<string>();
  const queue = [...roots];
  while (queue.length) {
    const file = queue.pop()!;
    for (const lib of await elfNeeded(file)) {
      if (!present.has(lib) || seen.has(lib)) continue;
      seen.add(lib);
      queue.push(join(dir, lib));
    }
  }
  return [...seen].sort();
}

/**
 * Lays the dispatch build out as shipped: `bin/` executables + `libggml-cpu-<variant>.so`,
 * `lib/` the shared libraries they need (copied under their SONAME, symlinks resolved).
 */
export async function installDispatch(buildDir: string, outDir: string): Promise<void> {
  const from = join(buildDir, 'bin');
  const bin = join(outDir, 'bin');
  const lib = join(outDir, 'lib');
  await mkdir(bin, { recursive: true });
  await mkdir(lib, { recursive: true });
  const modules = DISPATCH_CPU_VARIANTS.map((v) => `libggml-cpu-${v}.so`);
  const roots = [...DISPATCH_BINARIES, ...modules].map((f) => join(from, f));
  for (const f of roots) await copyFile(f, join(bin, basename(f)));
  for (const l of await localClosure(from, roots)) await copyFile(join(from, l), join(lib, l));
  await $({ quiet: true })`chmod 0755 ${DISPATCH_BINARIES.map((t) => join(bin, t))}`;
  await rm(buildDir, { recursive: true, force: true });
}
