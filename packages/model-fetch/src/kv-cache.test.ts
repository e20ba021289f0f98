import { describe, expect, it } from 'vitest';
import { KV_BYTES_PER_ELEMENT, KV_CACHE_TYPES, kvCacheBytes, kvCacheBytesOfType, kvCacheTypeFits } from './kv-cache.js';

// Devstral Small 2 24B's GGUF header: 40 layers, 8 KV heads of 128.
const devstral = { blockCount: 40, headCountKv: 8, keyLength: 128, valueLength: 128 };

describe('KV cache size by type', () => {
  it('bytes per element follow ggml block sizes: f16 2, q8_0 34 per 32, q4_0 18 per 32', () => {
    expect(KV_CACHE_TYPES).toEqual(['f16', 'q8_0', 'q4_0']);
    expect(KV_BYTES_PER_ELEMENT).toEqual({ f16: 2, q8_0: 1.0625, q4_0: 0.5625 });
  });

  it('Devstral: 160 KiB per token at f16, 85 KiB at q8_0, 45 KiB at q4_0; integers at any context', () => {
    expect(kvCacheBytesOfType(devstral, 1, 'f16')).toBe(160 * 1024);
    expect(kvCacheBytesOfType(devstral, 1, 'q8_0')).toBe(85 * 1024);
    expect(kvCacheBytesOfType(devstral, 1, 'q4_0')).toBe(45 * 1024);
    for (const type of KV_CACHE_TYPES) {
      const bytes = kvCacheBytesOfType(devstral, 65536, type);
      expect(Number.isInteger(bytes), type).toBe(true);
      expect(bytes).toBe(kvCacheBytes(devstral, 65536, KV_BYTES_PER_ELEMENT[type]));
    }
    expect(kvCacheBytesOfType(devstral, 65536, 'f16')).toBe(10 * 1024 ** 3);
  });

  it('a quantized type needs head widths that are whole blocks of 32', () => {
    expect(kvCacheTypeFits(devstral, 'q4_0')).toBe(true);
    expect(kvCacheTypeFits({ keyLength: 80, valueLength: 80 }, 'q8_0')).toBe(false);
    expect(kvCacheTypeFits({ keyLength: 80, valueLength: 80 }, 'f16')).toBe(true);
  });
});
