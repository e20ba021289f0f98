export { ONE_ENV_FILE, oneGateSetup, tokenFromOneEnv, type OneGateConfig, type OneGateSetup } from './config.js';
export { entryProblem, eraseBody, updateBody, EXTENDED_BODY, RESTRICTED_ATTRS } from './form.js';
export { OneGateClient, DEFAULTS, type ClientOptions, type Outcome } from './client.js';
export {
  nodeNics,
  type ServiceDocument,
  type ServiceNode,
  type ServiceRole,
  type VmDocument,
  type VmInfo,
  type VmNic,
} from './documents.js';
export { connectOneGate, publishToOneGate, type OneGateResult, type PublishOptions } from './publish.js';
