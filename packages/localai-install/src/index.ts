export { planEngine, RESERVED_BYTES, type EnginePlan, type PlanWarning } from './plan.js';
export { kvBytesPerToken, modelFactsFromManifest, type ModelFacts } from './model.js';
export { llamaServerArgs, CACHE_REUSE_TOKENS } from './llama-server.js';
export { localAiModel, localAiEnv, renderLocalAiModelYaml, renderEnvFile, DEFAULT_TEMPERATURE } from './localai.js';
export { renderEngineUnit, ENGINE_UNIT } from './unit.js';
export { renderEngine, loadChatTemplate, chatTemplateSource, type EngineInputs, type EngineRender } from './render.js';
export { LOCALAI_VERSION, localAiRelease, LLAMA_CPP_SOURCE } from './versions.js';
export {
  installLocalAi,
  installLlamaServer,
  checksumFor,
  type InstallLocalAiOptions,
  type LocalAiInstall,
  type LlamaServerInstall,
} from './install.js';
export {
  installLocalAiStandIn,
  renderLocalAiStandIn,
  standInModeFile,
  DEFAULT_STAND_IN_MODE,
  STAND_IN_MARKER,
  STAND_IN_MODES,
  type LocalAiStandInInstall,
  type StandInMode,
} from './stand-in.js';
