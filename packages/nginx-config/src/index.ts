export {
  renderGateway,
  renderUnconfigured,
  gatewayFiles,
  roleFiles,
  assertSafe,
  openAiError,
  tlsDirectives,
  CORS_ALLOWED_HEADERS,
  CORS_ALLOWED_METHODS,
  CORS_MAX_AGE_SECONDS,
  REALM,
  TLS_CIPHERS,
  CA_DOWNLOAD_PATH,
  type GatewayRenderOptions,
  type InternalRenderOptions,
  type TeamRenderOptions,
  type UnconfiguredRenderOptions,
  type GatewayFiles,
  type ServedCertificate,
} from './render.js';
export { namedKeys, basicCredentialPatterns, regexLiteral, type ResolvedKeys, type NamedKey } from './keys.js';
export { resolveApiKeys } from './api-key.js';
export { GATEWAY_LOAD_PATH } from './inference-site.js';
export { installGateway, type InstallGatewayOptions, type InstallGatewayResult } from './install.js';
export {
  ensureSelfSigned,
  installCustomCertificate,
  obtainLetsEncrypt,
  letsEncryptRequest,
  currentLetsEncrypt,
  prepareTls,
  certbotDirs,
  letsEncryptFiles,
  leafSans,
  certificateSans,
  canonicalIp,
  fingerprintOf,
  CA_VALIDITY_DAYS,
  LEAF_VALIDITY_DAYS,
  RENEW_BEFORE_DAYS,
  type SelfSignedOptions,
  type SelfSignedResult,
  type CustomCertificateResult,
  type LetsEncryptOptions,
  type LetsEncryptResult,
  type CertbotDirs,
  type PrepareTlsOptions,
  type TlsPlan,
  type ServedKind,
} from './tls.js';
export {
  renderNginxHardening,
  NGINX_CAPABILITIES,
  NGINX_DROP_IN,
  type NginxHardeningOptions,
} from './service-hardening.js';
export {
  renderTeamUpstream,
  renderLbClients,
  backendAddressProblem,
  nginxFingerprint,
  BACKEND_FAIL_TIMEOUT_S,
  TEAM_UPSTREAM,
  TEAM_ANY_UPSTREAM,
  type Backend,
  type TeamUpstreamOptions,
} from './team.js';
export { ensureLbClientCertificate, type LbClientCertificate } from './team-tls.js';
