// The agent suite's pieces, for other rig packages (e.g. a VM test running an agent against a booted image).
export { AGENT_PINS, type AgentName, type AgentPin } from './pins.js';
export {
  agentDir,
  ensureAgent,
  ensurePinned,
  lockedPackage,
  NPM_INSTALL_BOUND_MS,
  type EnsureOptions,
  type InstalledAgent,
  type PackagePin,
} from './install.js';
export {
  agentEnv,
  agentHome,
  endMarked,
  markedProcesses,
  runAgent,
  runSandboxed,
  type AgentHome,
  type RunOptions,
  type RunResult,
} from './harness.js';
export {
  CLAUDE_QUIET_ENV,
  claudeRunner,
  runCline,
  runCodex,
  runContinue,
  type AgentRun,
  type Target,
} from './agents.js';
export { APPLIANCE_HOST, MODEL_ID, startAppliance, type AgentKey, type Appliance } from './appliance.js';
export { session, type Figures, type Runner, type Session } from './session.js';
export { createSandbox, sandboxUnavailable, type Sandbox } from './netns.js';
export { describeNetwork, networkRecord, unexplained, type KnownAttempt, type NetworkRecord } from './network.js';
export { KNOWN_ATTEMPTS } from './known-attempts.js';
