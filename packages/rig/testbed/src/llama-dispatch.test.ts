import { createLogger } from '@slm-copilot/task-kit';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { $ } from 'zx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CPU_VARIANT_FEATURES,
  DISPATCH_CPU_VARIANTS,
  bestCpuVariant,
  hostCpuFlags,
  loadedCpuVariant,
} from './cpu-variant.js';
import { elfFilesIn } from './symbol-versions.js';
import { elfNeeded, elfRunpath } from './elf.js';
import { ensureLlamaBuild, llamaBuildKey, llamaCmakeFlags, type LlamaBuild } from './llama-build.js';
import { ensureLlamaSource } from './llama-source.js';
import { DISPATCH_RUNPATH, dispatchPasses } from './llama-dispatch.js';
import { startLlamaServer, type LlamaServer } from './llama-server.js';
import { ensureTinyModel } from './tiny-model.js';

const quiet = createLogger({ level: 'warn' });

// A cold dispatch build takes ~10 min on 2 cores (more on a busy machine); cached it is instant.
const BUILD_TIMEOUT = 40 * 60_000;

describe('dispatch build recipe', () => {
  it('is a shared GGML_BACKEND_DL build, not native, without UI/OpenSSL/llguidance', () => {
    const [p1, p2] = dispatchPasses();
    for (const p of [p1!, p2!]) {
      for (const o of ['BUILD_SHARED_LIBS', 'GGML_BACKEND_DL']) expect(p.flags).toContain(`-D${o}=ON`);
      for (const o of ['GGML_NATIVE', 'LLAMA_OPENSSL', 'LLAMA_BUILD_UI', 'LLAMA_USE_PREBUILT_UI', 'LLAMA_LLGUIDANCE'])
        expect(p.flags).toContain(`-D${o}=OFF`);
    }
    expect(p1!.flags).toContain('-DGGML_CPU_ALL_VARIANTS=ON');
    expect(p1!.targets).toEqual(DISPATCH_CPU_VARIANTS.map((v) => `ggml-cpu-${v}`));
    expect(p2!.targets).toEqual(['llama-server', 'llama-bench', 'llama-quantize']);
    expect(llamaCmakeFlags('dispatch')).toEqual([...p1!.flags, ...p2!.flags]);
    expect(llamaBuildKey('dispatch')).toMatch(/^3\.21\.1-dispatch-[0-9a-f]{10}$/);
  });

  it('ships no AMX (sapphirerapids) module: unproven here, llama.cpp #20824', () => {
    expect(DISPATCH_CPU_VARIANTS as readonly string[]).not.toContain('sapphirerapids');
    expect(dispatchPasses().flatMap((p) => p.targets)).not.toContain('ggml-cpu-sapphirerapids');
  });

  it('each variant tag exists in the bundled ggml and its feature list is the cmake one', async () => {
    const src = await ensureLlamaSource({ log: quiet });
    const cmake = await readFile(join(src.srcDir, 'ggml/src/CMakeLists.txt'), 'utf8');
    for (const v of DISPATCH_CPU_VARIANTS) {
      const m = new RegExp(`ggml_add_cpu_backend_variant\\(${v}\\s+([A-Z0-9_ ]+)\\)`).exec(cmake);
      expect(m, v).not.toBeNull();
      expect([...CPU_VARIANT_FEATURES[v]].sort(), v).toEqual(m![1]!.trim().split(/\s+/).sort());
    }
  }, 120_000);

  it('picks the module ggml would score highest', () => {
    const haswell = ['sse4_2', 'avx', 'f16c', 'fma', 'avx2', 'bmi2'];
    const avx512 = ['avx512f', 'avx512cd', 'avx512vl', 'avx512dq', 'avx512bw'];
    expect(bestCpuVariant(haswell)).toBe('haswell');
    expect(bestCpuVariant(haswell.filter((f) => f !== 'bmi2'))).toBeNull();
    expect(bestCpuVariant([...haswell, ...avx512.slice(0, 4)])).toBe('haswell');
    expect(bestCpuVariant([...haswell, ...avx512])).toBe('skylakex');
    expect(bestCpuVariant([...haswell, ...avx512, 'avx512vbmi', 'avx512_vnni'])).toBe('icelake');
    expect(
      bestCpuVariant([...haswell, ...avx512, 'avx512vbmi', 'avx512_vnni', 'avx512_bf16', 'amx_tile', 'amx_int8']),
    ).toBe('zen4');
  });

  it('loadedCpuVariant reads the backend registry line', () => {
    const log =
      'main: x\n' +
      'load_backend: loaded CPU backend from /opt/llama.cpp/bin/libggml-cpu-haswell.so\n' +
      'system_info: n_threads = 2';
    expect(loadedCpuVariant(log)).toBe('haswell');
    expect(loadedCpuVariant('load_backend: loaded CPU backend from ./libggml-cpu-zen4.so')).toBe('zen4');
    expect(loadedCpuVariant('load_backend: loaded RPC backend from ./libggml-rpc.so')).toBeNull();
    expect(loadedCpuVariant('')).toBeNull();
    const info = (f: string) =>
      `x system_info: n_threads = 2 / 2 | CPU : SSE3 = 1 | AVX = 1 | ${f}| LLAMAFILE = 1 | OPENMP = 1 |`;
    expect(loadedCpuVariant(info('AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 '))).toBe('haswell');
    expect(loadedCpuVariant(info('AVX2 = 1 | AVX512 = 1 '))).toBe('skylakex');
    expect(loadedCpuVariant(info('AVX2 = 1 | AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 '))).toBe('icelake');
    expect(loadedCpuVariant(info('AVX2 = 1 | AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 '))).toBe(
      'zen4',
    );
    expect(
      loadedCpuVariant(
        info('AVX2 = 1 | AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 '),
      ),
    ).toBe('sapphirerapids');
    expect(loadedCpuVariant(info('AVX = 1 '))).toBeNull();
  });
});

describe('dispatch build (real)', () => {
  let build: LlamaBuild;
  let root: string;
  beforeAll(async () => {
    build = await ensureLlamaBuild({ variant: 'dispatch' });
    root = join(build.binDir, '..');
  }, BUILD_TIMEOUT);

  it('has the executables and one CPU module per variant in bin/, the shared libraries in lib/', async () => {
    const bin = await readdir(build.binDir);
    for (const f of [
      'llama-server',
      'llama-bench',
      'llama-quantize',
      ...DISPATCH_CPU_VARIANTS.map((v) => `libggml-cpu-${v}.so`),
    ])
      expect(bin).toContain(f);
    expect(bin.filter((f) => f.startsWith('libggml-cpu-')).sort()).toEqual(
      DISPATCH_CPU_VARIANTS.map((v) => `libggml-cpu-${v}.so`).sort(),
    );
    const lib = await readdir(join(root, 'lib'));
    for (const l of await elfNeeded(build.llamaServer)) if (/^lib(llama|ggml|mtmd)/.test(l)) expect(lib).toContain(l);
  });

  it(`every ELF file has RUNPATH ${DISPATCH_RUNPATH}`, async () => {
    for (const f of await elfFilesIn([build.binDir, join(root, 'lib')])) {
      expect(await elfRunpath(f), f).toEqual({ tag: 'RUNPATH', value: DISPATCH_RUNPATH });
    }
  });

  it('is relocatable: a copy elsewhere finds its libraries in its own lib/, runs from any directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dispatch-copy-'));
    try {
      await cp(join(root, 'bin'), join(dir, 'bin'), { recursive: true });
      await cp(join(root, 'lib'), join(dir, 'lib'), { recursive: true });
      const ldd = await $({ quiet: true, cwd: '/' })`ldd ${join(dir, 'bin', 'llama-server')}`;
      expect(ldd.stdout).not.toContain('not found');
      for (const line of ldd.stdout.split('\n').filter((l) => /^\s*lib(llama|ggml|mtmd)/.test(l)))
        expect(line).toContain(`${dir}/bin/../lib/`);
      const v = await $({ quiet: true, nothrow: true, cwd: '/' })`${join(dir, 'bin', 'llama-server')} --version`;
      expect(v.exitCode, v.stderr).toBe(0);
      expect(v.stdout + v.stderr).toMatch(/version: \d+/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('dispatch llama-server on this host', () => {
  let server: LlamaServer;
  let bench: { stderr: string };
  beforeAll(async () => {
    const build = await ensureLlamaBuild({ variant: 'dispatch' });
    const model = await ensureTinyModel({ llama: build });
    // -lv 4: llama-server prints system_info (the loaded module's features) only at trace level
    server = await startLlamaServer({
      binary: build.llamaServer,
      args: ['-m', model.path, '-c', '2048', '-t', '2', '--alias', 'tiny', '-lv', '4'],
    });
    bench = await $({ quiet: true, cwd: '/' })`${build.llamaBench} -m ${model.path} -p 16 -n 0 -r 1 -o json`;
  }, BUILD_TIMEOUT);
  afterAll(async () => {
    await server?.stop();
  });

  it("logs the CPU module that matches this CPU's flags, and answers a completion", async () => {
    const flags = await hostCpuFlags();
    const expected = bestCpuVariant(flags);
    console.log(
      `[dispatch] host CPU best variant: ${expected}; llama-bench: ${/.*loaded CPU backend.*/.exec(bench.stderr)?.[0]}`,
    );
    expect(expected, 'this host has no AVX2: the dispatch build cannot run here').not.toBeNull();
    // llama-bench (run from cwd '/') names the module file; llama-server's system_info shows its features
    expect(loadedCpuVariant(bench.stderr)).toBe(expected);
    expect(server.output()).toContain('system_info:');
    expect(loadedCpuVariant(server.output())).toBe(expected);
    const r = await fetch(`${server.baseUrl}/completion`, {
      method: 'POST',
      body: JSON.stringify({ prompt: 'Hello', n_predict: 4 }),
    });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { tokens_predicted: number }).tokens_predicted).toBeGreaterThan(0);
  });
});
