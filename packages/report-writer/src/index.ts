export { renderIni, type IniSections } from './ini.js';
export {
  renderReport,
  renderRefusedReport,
  reportState,
  endpointOf,
  clientTarget,
  type EngineServing,
  type ReportInputs,
} from './report.js';
export {
  agentSnippets,
  caFetchSnippet,
  claudeCodeSnippet,
  clineSnippet,
  codexSnippet,
  continueSnippet,
  runLine,
  shWord,
  CLAUDE_QUIET_ENV,
  CLIENT_CA_FILE,
  CLINE_SETTINGS_FILE,
  CONTINUE_MODEL_FILE,
  KEY_VARIABLE,
  type AgentId,
  type AgentSnippet,
  type CaFetch,
  type CaFetchTarget,
  type ClientTarget,
} from './client-snippets.js';
export { renderBanner, bannerFiles } from './banner.js';
export {
  oneGatePublication,
  publishToOneGate,
  reportSecrets,
  ONEGATE_KEYS,
  type OneGateResult,
  type PublishOptions,
} from './onegate.js';
