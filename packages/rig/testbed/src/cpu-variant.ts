import { readFile } from 'node:fs/promises';

/**
 * The CPU backend modules the dispatch build ships (tags of `ggml_add_cpu_backend_variant` in
 * ggml/src/CMakeLists.txt), lowest first:
 * - haswell   SSE4.2 AVX F16C FMA AVX2 BMI2 — what QEMU TCG `-cpu max` runs (no AVX-512 there)
 * - skylakex  + AVX512 (F CD VL DQ BW)
 * - icelake   + AVX512 VBMI VNNI
 * - zen4      + AVX512 VBMI VNNI BF16 — AMD EPYC hosts; also the best shipped fit on Sapphire Rapids
 * sapphirerapids (zen4 + AMX) is NOT shipped: no machine here has amx_tile to prove it, and a
 * self-built AMX path segfaulted on quantized models (llama.cpp issue #20824). An AMX host loads
 * zen4 instead (llama-amx.test.ts checks that, where /proc/cpuinfo has amx_tile).
 * Nothing below haswell: the appliance needs AVX2 anyway (the engine plan warns `no-avx2`).
 */
export const DISPATCH_CPU_VARIANTS = ['haswell', 'skylakex', 'icelake', 'zen4'] as const;
export type CpuVariant = (typeof DISPATCH_CPU_VARIANTS)[number];

/**
 * ggml's x86 features: the /proc/cpuinfo flags each needs and its weight in
 * `ggml_backend_cpu_x86_score()` (ggml/src/ggml-cpu/arch/x86/cpu-feats.cpp).
 */
const FEATURES = {
  FMA: { flags: ['fma'], weight: 1 },
  F16C: { flags: ['f16c'], weight: 1 << 1 },
  SSE42: { flags: ['sse4_2'], weight: 1 << 2 },
  BMI2: { flags: ['bmi2'], weight: 1 << 3 },
  AVX: { flags: ['avx'], weight: 1 << 4 },
  AVX2: { flags: ['avx2'], weight: 1 << 5 },
  AVX512: { flags: ['avx512f', 'avx512cd', 'avx512vl', 'avx512dq', 'avx512bw'], weight: 1 << 7 },
  AVX512_VBMI: { flags: ['avx512vbmi'], weight: 1 << 8 },
  AVX512_BF16: { flags: ['avx512_bf16'], weight: 1 << 9 },
  AVX512_VNNI: { flags: ['avx512_vnni'], weight: 1 << 10 },
} as const;
type Feature = keyof typeof FEATURES;

const HASWELL: Feature[] = ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2'];
export const CPU_VARIANT_FEATURES: Record<CpuVariant, Feature[]> = {
  haswell: HASWELL,
  skylakex: [...HASWELL, 'AVX512'],
  icelake: [...HASWELL, 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI'],
  zen4: [...HASWELL, 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI', 'AVX512_BF16'],
};

/** ggml's score of a module on a CPU with these flags (0: the module cannot run there). */
export function cpuVariantScore(variant: CpuVariant, cpuFlags: readonly string[]): number {
  const have = new Set(cpuFlags);
  let score = 1;
  for (const f of CPU_VARIANT_FEATURES[variant]) {
    if (!FEATURES[f].flags.every((x) => have.has(x))) return 0;
    score += FEATURES[f].weight;
  }
  return score;
}

/** The module ggml's loader picks on a CPU with these flags (highest score), or null if none runs. */
export function bestCpuVariant(cpuFlags: readonly string[]): CpuVariant | null {
  let best: CpuVariant | null = null;
  let bestScore = 0;
  for (const v of DISPATCH_CPU_VARIANTS) {
    const s = cpuVariantScore(v, cpuFlags);
    if (s > bestScore) [best, bestScore] = [v, s];
  }
  return best;
}

/** The `flags` line of /proc/cpuinfo (first CPU). */
export async function hostCpuFlags(): Promise<string[]> {
  const info = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const line = info.split('\n').find((l) => l.startsWith('flags')) ?? '';
  return line
    .replace(/^flags\s*:/, '')
    .trim()
    .split(/\s+/)
    .filter(Boolean);
}

/** Features whose presence tells the shipped modules apart in `system_info`. */
const LEVEL_FEATURES = ['AVX2', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI', 'AVX512_BF16'];

/**
 * The CPU module a llama.cpp log shows was loaded, as its tag (`haswell`, `zen4`, …), or null.
 * Two forms (ggml-backend-reg.cpp, common/common.cpp):
 * - `load_backend: loaded CPU backend from <dir>/libggml-cpu-<tag>.so` — ggml logs it at INFO, which
 *   llama-bench prints (it loads backends before silencing the log) but llama-server does not: it
 *   loads backends while parsing its arguments, when ggml INFO (= common's TRACE, 4) is filtered
 *   even with `-lv 4`.
 * - `system_info: … | CPU : AVX2 = 1 | AVX512 = 1 | …` — llama-server prints it with `-lv 4`; the
 *   features are the loaded module's compile-time ones, which differ between the shipped modules.
 */
export function loadedCpuVariant(log: string): string | null {
  const m = /loaded CPU backend from \S*?libggml-cpu-([A-Za-z0-9_.]+?)\.so\b/.exec(log);
  if (m) return m[1]!;
  const info = /system_info:[^\n]*?\| CPU : ([^\n]*)/.exec(log);
  if (!info) return null;
  const on = new Set([...info[1]!.matchAll(/(\w+) = 1/g)].map((x) => x[1]!));
  if (on.has('AMX_INT8')) return 'sapphirerapids';
  const level = (has: (f: string) => boolean) => LEVEL_FEATURES.filter(has).join(',');
  const seen = level((f) => on.has(f));
  return (
    DISPATCH_CPU_VARIANTS.find((v) => level((f) => (CPU_VARIANT_FEATURES[v] as string[]).includes(f)) === seen) ?? null
  );
}
