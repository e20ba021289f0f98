import { createLogger } from '@slm-copilot/task-kit';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { llamaBuildKey, llamaCmakeFlags } from './llama-build.js';

describe('llama.cpp cmake flags', () => {
  it('avx2 has every AVX-512 and AMX option off, and no native tuning', () => {
    const f = llamaCmakeFlags('avx2');
    for (const o of [
      'GGML_AVX512',
      'GGML_AVX512_VBMI',
      'GGML_AVX512_VNNI',
      'GGML_AVX512_BF16',
      'GGML_AMX_TILE',
      'GGML_AMX_INT8',
      'GGML_AMX_BF16',
      'GGML_NATIVE',
    ]) {
      expect(f).toContain(`-D${o}=OFF`);
    }
    for (const o of ['GGML_AVX', 'GGML_AVX2', 'GGML_FMA', 'GGML_F16C', 'GGML_BMI2']) expect(f).toContain(`-D${o}=ON`);
    for (const o of ['LLAMA_OPENSSL', 'LLAMA_BUILD_UI', 'LLAMA_USE_PREBUILT_UI', 'BUILD_SHARED_LIBS'])
      expect(f).toContain(`-D${o}=OFF`);
  });

  it('host adds AVX-512 F/VBMI/VNNI/BF16 but keeps AMX off', () => {
    const f = llamaCmakeFlags('host');
    for (const o of ['GGML_AVX512', 'GGML_AVX512_VBMI', 'GGML_AVX512_VNNI', 'GGML_AVX512_BF16'])
      expect(f).toContain(`-D${o}=ON`);
    for (const o of ['GGML_AMX_TILE', 'GGML_AMX_INT8', 'GGML_AMX_BF16', 'GGML_NATIVE'])
      expect(f).toContain(`-D${o}=OFF`);
  });

  it('cache keys name the version and variant and differ by flags', () => {
    expect(llamaBuildKey('avx2')).toMatch(/^3\.21\.1-avx2-[0-9a-f]{10}$/);
    expect(llamaBuildKey('host')).toMatch(/^3\.21\.1-host-[0-9a-f]{10}$/);
    expect(llamaBuildKey('avx2', '9.9.9')).not.toBe(llamaBuildKey('avx2'));
  });

  it('every GGML_* option we set exists in the bundled tree (when the source is cached)', async () => {
    const { ensureLlamaSource } = await import('./llama-source.js');
    const src = await ensureLlamaSource({ log: createLogger({ level: 'warn' }) });
    const cmake =
      (await readFile(`${src.srcDir}/ggml/CMakeLists.txt`, 'utf8')) +
      (await readFile(`${src.srcDir}/CMakeLists.txt`, 'utf8'));
    for (const flag of llamaCmakeFlags('host')) {
      const name = /^-D(\w+)=/.exec(flag)![1]!;
      if (name === 'CMAKE_BUILD_TYPE' || name === 'BUILD_SHARED_LIBS') continue;
      expect(cmake, name).toMatch(new RegExp(`option\\(${name}\\s`));
    }
  }, 120_000);
});
