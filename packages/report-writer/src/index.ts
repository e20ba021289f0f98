export { renderIni, type IniSections } from './ini.js';
export { renderReport, renderRefusedReport, clineSettings, continueConfig, endpointOf, clientFiles, type ReportInputs } from './report.js';
export { renderBanner, bannerFiles } from './banner.js';
export { publishToOneGate, type OneGateResult } from './onegate.js';
