export { planEngine, type EnginePlan, type PlanWarning } from './plan.js';
export { modelFactsFromManifest, type ModelFacts } from './model.js';
export { llamaServerArgs } from './llama-server.js';
export { renderEnvFile } from './localai.js';
export {
  renderEngine,
  engineCacheFingerprint,
  loadChatTemplate,
  type EngineInputs,
  type EngineRender,
} from './render.js';
export {
  decideSlotCache,
  partialFileName,
  slotCacheDir,
  slotCacheEnabled,
  slotCacheRoot,
  slotFileName,
  staleSlotCacheEntries,
  SLOT_CACHE_ID,
  type SlotCacheState,
} from './slot-cache.js';
export { SLOT_CACHE_UNIT } from './slot-cache-unit.js';
export { LOCALAI_VERSION, localAiRelease } from './versions.js';
export {
  installLocalAi,
  installLlamaServer,
  checksumFor,
  type InstallLocalAiOptions,
  type LocalAiInstall,
  type LlamaServerInstall,
} from './install.js';
export { installLocalAiStandIn, standInModeFile, type LocalAiStandInInstall, type StandInMode } from './stand-in.js';
