export { aptInstall } from './build-tools.js';
export { NODE_LLAMA_CPP_VERSION, ensureLlamaSource, type LlamaSource } from './llama-source.js';
export {
  LLAMA_TARGETS,
  LLAMA_VARIANTS,
  VARIANT_CPU_FLAGS,
  ensureLlamaBuild,
  llamaBuildKey,
  llamaBuildPasses,
  llamaCmakeFlags,
  missingCpuFlags,
  type LlamaBuild,
  type LlamaBuildOptions,
  type LlamaVariant,
} from './llama-build.js';
export {
  AGENT_CONTEXT_LENGTH,
  CHAT_TEMPLATE_PATH_IN_TREE,
  DEVSTRAL_SHAPED_PARAMS,
  SYSTEM_PYTHON,
  TINY_MODEL_PARAMS,
  TINY_VARIANT_PARAMS,
  ensureDevstralShapedModel,
  ensureGgufModel,
  ensurePython,
  ensureTinyModel,
  generatorScriptPath,
  variantScriptPath,
  type GgufModel,
  type ModelOptions,
  type ModelParams,
  type TinyModelOptions,
  type TinyVariant,
  type VariantEdits,
} from './tiny-model.js';
export { DISPATCH_BINARIES, DISPATCH_RUNPATH, dispatchPasses, type BuildPass } from './llama-dispatch.js';
export {
  CPU_VARIANT_FEATURES,
  DISPATCH_CPU_VARIANTS,
  bestCpuVariant,
  cpuVariantScore,
  hostCpuFlags,
  loadedCpuVariant,
  type CpuVariant,
} from './cpu-variant.js';
export { RUNTIME_BINARIES, ensureLlamaRuntime, type LlamaRuntime, type LlamaRuntimeOptions } from './llama-runtime.js';
export {
  TARGET_OSES,
  assertSymbolVersions,
  checkAgainst,
  compareVersions,
  elfFilesIn,
  parseVersionLabel,
  requiredVersions,
  type FileRequirements,
  type TargetOs,
  type VersionFamily,
  type Violation,
} from './symbol-versions.js';
export { elfNeeded, elfRunpath, elfVersionNeeds, type VersionNeed } from './elf.js';
export { startLlamaServer, type LlamaServer, type StartLlamaServerOptions } from './llama-server.js';
export { loggedKvCache, type LoggedKvCache } from './kv-cache-log.js';
export { startMirror, type Mirror, type MirrorFault, type MirrorOptions, type MirrorRequest } from './mirror.js';
export { parseRange } from './mirror-serve.js';
export { ggufContextLength, readGgufMetadata, type GgufHeader, type GgufValue } from './gguf.js';
export { NGINX, nginxMainConf, startNginx, type NginxProcess, type StartNginxOptions } from './nginx.js';
export { fetchOver, lookupTo, type NodeRequester } from './fetch.js';
export { seededRandom } from './seeded-random.js';
