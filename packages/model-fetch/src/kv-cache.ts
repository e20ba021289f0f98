import type { GgufFacts } from './manifest.js';

/** The GGUF header facts the KV cache's size follows from. */
export type KvCacheShape = Pick<GgufFacts, 'blockCount' | 'headCountKv' | 'keyLength' | 'valueLength'>;

/** The KV-cache types the appliance offers (llama.cpp `--cache-type-k/-v` names, ggml_type_name). */
export const KV_CACHE_TYPES = ['f16', 'q8_0', 'q4_0'] as const;
export type KvCacheType = (typeof KV_CACHE_TYPES)[number];

/** Elements per quantization block of q8_0 and q4_0 (QK8_0 = QK4_0 = 32 in ggml/src/ggml-common.h). */
export const KV_QUANT_BLOCK = 32;

/**
 * Bytes per cached element, from ggml's block layouts (ggml/src/ggml-common.h): f16 is 2 bytes;
 * block_q8_0 = an fp16 scale + 32 int8 = 34 bytes per 32; block_q4_0 = an fp16 scale + 16 bytes of
 * nibbles = 18 bytes per 32. Exact in binary floating point, so byte counts stay integers.
 */
export const KV_BYTES_PER_ELEMENT: Readonly<Record<KvCacheType, number>> = Object.freeze({
  f16: 2,
  q8_0: 34 / KV_QUANT_BLOCK,
  q4_0: 18 / KV_QUANT_BLOCK,
});

/**
 * KV-cache bytes for `contextTokens` tokens (all slots together): layers × KV heads ×
 * (key + value length) × bytes per element — 2 for the engines' default f16 cache; a quantized
 * cache type passes its own size (KV_BYTES_PER_ELEMENT). `contextTokens = 1` gives the bytes per token.
 */
export function kvCacheBytes(shape: KvCacheShape, contextTokens: number, bytesPerElement = 2): number {
  return shape.blockCount * shape.headCountKv * (shape.keyLength + shape.valueLength) * bytesPerElement * contextTokens;
}

/** kvCacheBytes for a cache type by name. */
export function kvCacheBytesOfType(shape: KvCacheShape, contextTokens: number, type: KvCacheType): number {
  return kvCacheBytes(shape, contextTokens, KV_BYTES_PER_ELEMENT[type]);
}

/**
 * Whether llama.cpp can store this model's K and V rows in `type`: a quantized type needs each head's
 * width to be a whole number of blocks, else the engine refuses the context
 * (src/llama-context.cpp, llama_init_from_model: "K cache type … does not divide n_embd_head_k").
 */
export function kvCacheTypeFits(shape: Pick<KvCacheShape, 'keyLength' | 'valueLength'>, type: KvCacheType): boolean {
  if (type === 'f16') return true;
  return shape.keyLength % KV_QUANT_BLOCK === 0 && shape.valueLength % KV_QUANT_BLOCK === 0;
}
