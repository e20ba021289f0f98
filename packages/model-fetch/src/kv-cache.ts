import type { GgufFacts } from './manifest.js';

/** The GGUF header facts the KV cache's size follows from. */
export type KvCacheShape = Pick<GgufFacts, 'blockCount' | 'headCountKv' | 'keyLength' | 'valueLength'>;

/**
 * KV-cache bytes for `contextTokens` tokens (all slots together): layers × KV heads ×
 * (key + value length) × bytes per element — 2 for the engines' default f16 cache; a quantized
 * cache type (q8_0…) passes its own size. `contextTokens = 1` gives the bytes per token.
 */
export function kvCacheBytes(shape: KvCacheShape, contextTokens: number, bytesPerElement = 2): number {
  return shape.blockCount * shape.headCountKv * (shape.keyLength + shape.valueLength) * bytesPerElement * contextTokens;
}
