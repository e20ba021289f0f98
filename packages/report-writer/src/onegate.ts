/**
 * What the appliance publishes on its VM through OneGate (the client: @slm-copilot/onegate, which speaks
 * OneGate's HTTP API itself), once the gateway's /readyz answers 200. Never a key: the API keys are
 * passed as secrets, and a pair holding one is refused before anything is sent.
 */
import { publishToOneGate, type OneGateResult, type PublishOptions } from '@slm-copilot/onegate';
import { endpointOf, type ReportInputs } from './report.js';

export { publishToOneGate, type OneGateResult, type PublishOptions };

/** The keys, in the order they are sent; README "OneGate" names them. */
export const ONEGATE_KEYS = {
  endpoint: 'ONEAPP_COPILOT_ENDPOINT',
  modelId: 'ONEAPP_COPILOT_MODEL_ID',
  engine: 'ONEAPP_COPILOT_ENGINE_SERVING',
  caSha256: 'ONEAPP_COPILOT_TLS_CA_SHA256',
  certSha256: 'ONEAPP_COPILOT_TLS_CERT_SHA256',
  ready: 'READY',
} as const;

/**
 * Endpoint, model id, the engine serving, the fingerprints the report shows (the per-VM CA's in
 * self-signed mode, the served certificate's always), and READY=YES when the context asks for it
 * (REPORT_READY=YES, what one-context's net-99-report-ready checks).
 */
export function oneGatePublication(
  report: Pick<ReportInputs, 'host' | 'config' | 'serving' | 'tls'>,
  env: Record<string, string | undefined>,
): Record<string, string> {
  const k = ONEGATE_KEYS;
  const out: Record<string, string> = {
    [k.endpoint]: `${endpointOf(report)}/v1`,
    [k.modelId]: report.config.modelId,
  };
  if (report.serving?.serving) out[k.engine] = report.serving.serving;
  if (report.tls.caFingerprintSha256) out[k.caSha256] = report.tls.caFingerprintSha256;
  out[k.certSha256] = report.tls.certFingerprintSha256;
  if (env.REPORT_READY === 'YES') out[k.ready] = 'YES';
  return out;
}

/** The values that never leave the VM: every API key the gateway accepts. */
export function reportSecrets(report: Pick<ReportInputs, 'apiKey' | 'config'>): string[] {
  return [report.apiKey, ...report.config.extraApiKeys];
}
