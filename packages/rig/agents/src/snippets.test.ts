// The report's snippets are what the agent tests run (agents.ts): here, broken variants of them must
// fail against the same real gateway, so a wrong line in the report cannot pass unnoticed. Continue CLI
// is the agent (its run takes seconds); the CA lines are checked against another appliance's CA.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { continueSnippet, KEY_VARIABLE, type AgentSnippet } from '@slm-copilot/report-writer';
import { ensureSelfSigned } from '@slm-copilot/nginx-config';
import { appliancePaths } from '@slm-copilot/context-schema';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientTargetOf, fetchCa, runSnippet } from './agents.js';
import { startAppliance, type Appliance } from './appliance.js';
import { agentEnv, agentHome } from './harness.js';
import { session } from './session.js';

const CONTEXT = 4096;
const BOUND = 90_000;
const PROMPT = 'Say hello.';

let app: Appliance;

beforeAll(async () => {
  app = await startAppliance({ agents: ['continue'], overrides: { ONEAPP_COPILOT_CONTEXT_SIZE: String(CONTEXT) } });
});

afterAll(async () => {
  await app?.stop();
});

/** `lines` with `from` replaced in each; throws when nothing matched (a stale mutation proves nothing). */
function replaced(lines: string[], from: string, to: string): string[] {
  if (!lines.some((l) => l.includes(from))) throw new Error(`mutation did not apply: ${from}`);
  return lines.map((l) => l.replaceAll(from, to));
}

/** Continue run with its snippet changed by `mutate`. */
const mutated = (label: string, mutate: (s: AgentSnippet) => AgentSnippet) =>
  session(
    app,
    'continue',
    (agent, h, t, prompt, timeoutMs) =>
      runSnippet(agent, h, t, mutate(continueSnippet(clientTargetOf(t))), { prompt, timeoutMs }),
    { prompt: PROMPT, timeoutMs: BOUND, contextLength: CONTEXT, label },
  );

describe('a wrong snippet fails against the real gateway', () => {
  it('the key stored under another secret name than the model block reads: no request is served', async () => {
    const s = await mutated('wrong-secret', (sn) => ({
      ...sn,
      setup: replaced(sn.setup, `${KEY_VARIABLE}=`, 'SLM_COPILOT_KEY='),
    }));
    expect(s.run.task.exitCode).not.toBe(0);
    expect(s.entries.filter((e) => e.status === 200)).toEqual([]);
    // cn sent the unresolved secret: the gateway refused it as no valid key
    expect(s.unkeyed.map((e) => `${e.method} ${e.path} ${e.status}`)).toContain('POST /v1/chat/completions 401');
  });

  it('without the CA line (NODE_EXTRA_CA_CERTS) the TLS handshake fails: no HTTP request at all', async () => {
    const lines = async () => (await app.gateway.accessLog()).split('\n').filter((l) => l.includes('"path"'));
    const before = (await lines()).length;
    const s = await mutated('no-ca', (sn) => ({ ...sn, env: replaced(sn.env, 'NODE_EXTRA_CA_CERTS=', 'UNUSED_CA=') }));
    expect(s.run.task.exitCode).not.toBe(0);
    expect(s.run.task.stderr).toContain('Connection error.');
    // only the CA download (curl, before the agent) was logged: cn never completed a handshake
    expect((await lines()).slice(before).map((l) => JSON.parse(l).path)).toEqual(['/slm-copilot-ca.pem']);
  });

  it("the CA lines refuse a CA whose fingerprint is not the report's (another appliance's CA)", async () => {
    const other = await mkdtemp(path.join(tmpdir(), 'agents-other-ca-'));
    const h = await agentHome('ca-check');
    try {
      const paths = appliancePaths(other);
      await ensureSelfSigned({ paths, hostname: null, ipAddresses: [], log: quietLog });
      const target = {
        origin: app.origin,
        caFile: paths.tls.caCert,
        key: app.keys.continue!,
        model: 'm',
        contextLength: CONTEXT,
      };
      await expect(fetchCa(h, target, agentEnv(h, target.caFile))).rejects.toThrow(
        /the report's CA lines failed \(exit 0\)/,
      );
      // The same lines with this appliance's CA pass (the check is not always failing).
      await fetchCa(h, { ...target, caFile: app.caFile }, agentEnv(h, app.caFile));
    } finally {
      h.remove();
      await rm(other, { recursive: true, force: true });
    }
  });
});
