export { configure, publicHost, type StageOptions } from './configure.js';
export { bootstrap, waitUntilReady, READY_TIMEOUT_MS } from './bootstrap.js';
export { install, installServiceHardening, type BuildPlan, type PlannedArtifact } from './install.js';
export { runStage, contractPaths, type Stage } from './runner.js';
export { systemdControl, type ServiceControl } from './services.js';
export { loadContext } from './context.js';
export { stateFiles, type InstalledImage, type PendingWork } from './state.js';
