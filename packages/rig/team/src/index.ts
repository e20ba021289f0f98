// The service rig for other rigs (the bench's team figure): nodes in network namespaces, their client.
export { canCreateNetns } from '@slm-copilot/hardening/test-support/netns';
export { chat, type ChatOptions, type ChatResult, type ChatTarget } from './client.js';
export {
  lbLog,
  REFRESH_MS,
  startInference,
  startLb,
  type InferenceNode,
  type InferenceSpec,
  type LbNode,
  type Mutation,
  type Served,
} from './nodes.js';
