export { CATALOG, DEFAULT_MODEL_ID, findModel, hubDownloadUrl, type CatalogEntry } from './catalog.js';
export {
  listHubTree,
  lockedArtifact,
  missingLockHint,
  MODEL_FETCH_FROM_ROOT,
  readLock,
  resolveCommit,
  resolveModel,
  writeLockEntries,
  type ArtifactsLock,
  type HubTreeEntry,
  type LockedArtifact,
  type ResolvedModel,
  type ResolveOptions,
} from './resolve.js';
export {
  classifyWgetFailure,
  fetchModel,
  formatBytes,
  mirrorSources,
  TailHasher,
  type FailureKind,
  type FetchModelOptions,
  type FetchResult,
  type HashMode,
  type SourceFailure,
  type StatfsLike,
} from './fetch.js';
export { wantsGguf } from './gguf-check.js';
export {
  KV_BYTES_PER_ELEMENT,
  KV_CACHE_TYPES,
  KV_QUANT_BLOCK,
  kvCacheBytes,
  kvCacheBytesOfType,
  kvCacheTypeFits,
  type KvCacheShape,
  type KvCacheType,
} from './kv-cache.js';
export { backoffDelayMs, isTransient, type RetryPolicy } from './retry.js';
export {
  SAMPLE_BYTES,
  buildManifest,
  computeSampledHash,
  manifestPath,
  readGgufFacts,
  readManifest,
  sampleOffsets,
  verifyFull,
  verifySampled,
  writeManifest,
  type GgufFacts,
  type ModelManifest,
  type SampledHash,
  type VerifyResult,
} from './manifest.js';
