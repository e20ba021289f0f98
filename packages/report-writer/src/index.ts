export { renderIni, type IniSections } from './ini.js';
export {
  renderReport,
  renderRefusedReport,
  reportState,
  clineSettings,
  continueConfig,
  endpointOf,
  clientFiles,
  type EngineServing,
  type ReportInputs,
} from './report.js';
export { renderBanner, bannerFiles } from './banner.js';
export { publishToOneGate, type OneGateResult } from './onegate.js';
