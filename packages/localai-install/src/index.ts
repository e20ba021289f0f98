export { planEngine, type EnginePlan, type PlanWarning } from './plan.js';
export { modelFactsFromManifest, type ModelFacts } from './model.js';
export { llamaServerArgs } from './llama-server.js';
export { renderEnvFile } from './localai.js';
export { renderEngine, loadChatTemplate, type EngineInputs, type EngineRender } from './render.js';
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
