export { configure, engineVersion, publicHost, type StageOptions } from './configure.js';
export { bootstrap, readyz, renderFromState, READY_TIMEOUT_MS } from './bootstrap.js';
export {
  DEFAULT_WATCH_BOUNDS,
  readProcessProgress,
  unitFailure,
  watchEngine,
  type EngineProbe,
  type ProcessProgress,
  type UnitStatus,
  type WatchBounds,
  type WatchOutcome,
} from './engine-watch.js';
export { restoreSlots, saveSlots, type SlotOutcome } from './prompt-cache/slots.js';
export { serveAnEngine, type Attempt, type ServeResult } from './fallback.js';
export { install, installServiceHardening, type BuildPlan, type PlannedArtifact } from './install.js';
export { stagePaths } from './options.js';
export { runStage, contractPaths, type Stage } from './runner.js';
export { engineBinary, gatewayInputs, otherEngine, renderServing, servingInputs, type EngineName } from './serving.js';
export { parseShow, systemdControl, type ServiceControl } from './services.js';
export { requireInstalled, stateFiles, type InstalledImage, type PendingWork, type RenderFacts } from './state.js';
export { runChecks, formatHeader, formatLine, formatVerdict, type CheckReport } from './check/run.js';
export { resolveTarget, parseIni, KEY_ENV, type CheckFlags, type CheckTarget } from './check/target.js';
export type { CheckResult, Status as CheckStatus } from './check/probes.js';
export {
  backendsFromService,
  backendSetKey,
  lbFingerprintsFromService,
  PUBLISHED,
  ROLE_NAMES,
  type ServiceView,
} from './team/service-view.js';
export { engineLoad, gatewayLoad, inferencePublication, type EngineLoad, type InferenceStatus } from './team/load.js';
export {
  drain,
  runTeam,
  TeamRefresher,
  type DrainOptions,
  type TeamDeps,
  type TeamView,
  type TickResult,
} from './team/refresh.js';
