export type { Config, Engine, KvCacheType, Role, TlsConfig, TlsMode } from './config.js';
export { parseContext, ContextError, redactConfig, secretsOf, showValue, type ContextProblem } from './parse.js';
export { parseContextFile, type ContextFile } from './context-file.js';
export { loadContext } from './load-context.js';
export { variables, variableByName, contextSchema, VARIABLE_PREFIX, type VariableSpec } from './schema.js';
export {
  renderDocsTable,
  renderServiceParams,
  renderMarketplaceInputs,
  marketplaceInputs,
  userInput,
  contextDefault,
  contextText,
  withDefaults,
  type VariableDefaults,
} from './generate.js';
export { appliancePaths, type AppliancePaths } from './paths.js';
export { APPLIANCE_VERSION } from './version.js';
