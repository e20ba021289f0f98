/** What the appliance publishes, sent through the OneGate double (test-support of @slm-copilot/onegate). */
import { describe, expect, it } from 'vitest';
import { appliancePaths, parseContext } from '@slm-copilot/context-schema';
import { startOneGateDouble } from '@slm-copilot/onegate/test-support/onegate-double';
import { generateApiKey } from '@slm-copilot/task-kit';
import { captureLog } from '@slm-copilot/task-kit/test-support/log';
import { oneGatePublication, publishToOneGate, reportSecrets } from './onegate.js';
import type { ReportInputs } from './report.js';

const key = generateApiKey();
const extra = generateApiKey();
const report = (tls: Partial<ReportInputs['tls']> = {}): ReportInputs => {
  const paths = appliancePaths();
  return {
    config: parseContext({ ONEAPP_COPILOT_EXTRA_API_KEYS: extra, ONEAPP_COPILOT_HTTPS_PORT: '8443' }),
    paths,
    apiKey: key,
    generatedKeyFile: null,
    host: '192.0.2.10',
    engine: { name: 'llama-server', version: 'b1', threads: 2, contextPerSlot: 4096, parallelSlots: 1 },
    tls: {
      mode: 'self-signed',
      caCertPath: paths.tls.caCert,
      caFingerprintSha256: 'AA:BB:CC',
      certFingerprintSha256: 'DD:EE:FF',
      notAfter: '2028-01-01T00:00:00Z',
      ...tls,
    },
    warnings: [],
    errors: [],
    generatedAt: '2026-11-28T00:00:00Z',
    serving: { requested: 'localai', serving: 'llama-server', fallbackReason: 'exited' },
  };
};

describe('OneGate publication', () => {
  it('endpoint, model, engine serving, the fingerprints the report shows; READY only with REPORT_READY=YES', () => {
    const r = report();
    const base = {
      ONEAPP_COPILOT_ENDPOINT: 'https://192.0.2.10:8443/v1',
      ONEAPP_COPILOT_MODEL_ID: r.config.modelId,
      ONEAPP_COPILOT_ENGINE_SERVING: 'llama-server',
      ONEAPP_COPILOT_TLS_CA_SHA256: 'AA:BB:CC',
      ONEAPP_COPILOT_TLS_CERT_SHA256: 'DD:EE:FF',
    };
    expect(oneGatePublication(r, {})).toEqual(base);
    expect(oneGatePublication(r, { REPORT_READY: 'NO' })).toEqual(base);
    expect(oneGatePublication(r, { REPORT_READY: 'YES' })).toEqual({ ...base, READY: 'YES' });
    // Let's Encrypt: no per-VM CA, the served certificate's fingerprint only
    const le = oneGatePublication(report({ mode: 'letsencrypt', caCertPath: null, caFingerprintSha256: null }), {});
    expect(le).not.toHaveProperty('ONEAPP_COPILOT_TLS_CA_SHA256');
    expect(le.ONEAPP_COPILOT_TLS_CERT_SHA256).toBe('DD:EE:FF');
  });

  it('sent as one PUT /vm; no API key in any request', async () => {
    const og = await startOneGateDouble();
    try {
      const vm = og.addVm();
      const r = report();
      const data = { ...oneGatePublication(r, { REPORT_READY: 'YES' }), LEAK: `x${extra}` };
      const { log } = captureLog();
      const result = await publishToOneGate(data, { env: og.contextOf(vm), log, secrets: reportSecrets(r) });
      expect(result.published).toBe(true);
      expect(og.requests).toHaveLength(1);
      for (const k of [key, extra]) expect(JSON.stringify(og.requests)).not.toContain(k);
      expect(vm.userTemplate).toEqual(oneGatePublication(r, { REPORT_READY: 'YES' }));
    } finally {
      await og.close();
    }
  });
});
