// The full testssl.sh run (every default check, testssl's own sockets: SSLv2/SSLv3 really probed,
// ciphers, preferences, vulnerabilities, client simulation) against the gateway on the real nginx.
// Too long for `test` (its duration: README.md, "Figures"); the quick set is (testssl.test.ts).
// The command line: `testssl-full` in cli.ts.
import { appliancePaths } from '@slm-copilot/context-schema';
import { ensureSelfSigned } from '@slm-copilot/nginx-config';
import { startGateway, tempRoot } from '@slm-copilot/nginx-config/test-support/nginx';
import { startUpstreamDouble } from '@slm-copilot/nginx-config/test-support/upstream-double';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';
import { judge, notable, readAllowList, runTestssl, type AllowListEntry, type TestsslRun } from './testssl.js';

const HOST = 'copilot.example.test';

export interface TestsslFullResult {
  run: TestsslRun;
  allow: AllowListEntry[];
  problems: string[];
}

/** Starts the gateway (before an engine test double) and runs every testssl.sh check against it. */
export async function runTestsslFull(log: (m: string) => void): Promise<TestsslFullResult> {
  const allow = await readAllowList();
  const double = await startUpstreamDouble(); // engine test double: testssl only talks TLS to nginx
  const root = await tempRoot('testssl-full');
  const paths = appliancePaths(root);
  try {
    const ss = await ensureSelfSigned({ paths, hostname: HOST, ipAddresses: [], log: quietLog });
    const gw = await startGateway({
      root,
      tls: ss.served,
      trustFile: paths.tls.caCert,
      enginePort: double.port,
      env: {
        ONEAPP_COPILOT_ENGINE: 'llama-server',
        ONEAPP_COPILOT_HOSTNAME: HOST,
        ONEAPP_COPILOT_TLS_MODE: 'self-signed',
      },
    });
    try {
      log(`testssl (full) against ${HOST}:${gw.httpsPort} (127.0.0.1)…`);
      const run = await runTestssl({
        hostname: HOST,
        port: gw.httpsPort,
        ip: '127.0.0.1',
        caFile: paths.tls.caCert,
        mode: 'full',
        timeoutSeconds: 1800,
      });
      return { run, allow, problems: judge(run, allow, 'full') };
    } finally {
      await gw.stop();
    }
  } finally {
    await double.close();
  }
}

export function testsslFullJson({ run, problems }: TestsslFullResult): string {
  return JSON.stringify({ seconds: run.seconds, problems, notable: notable(run), findings: run.findings }, null, 2);
}

export function testsslFullSummary({ run, allow, problems }: TestsslFullResult): string {
  const proto = ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1', 'TLS1_2', 'TLS1_3'].map(
    (id) => `${id}: ${run.findings.find((f) => f.id === id)?.finding ?? '?'}`,
  );
  const medium =
    notable(run)
      .map((f) => `${f.severity} ${f.id} (${f.finding})`)
      .join('; ') || 'none';
  return (
    `testssl full: ${run.seconds.toFixed(0)} s, ${run.findings.length} findings\n  ${proto.join('\n  ')}\n` +
    `  MEDIUM or worse: ${medium}\n` +
    `  allowed: ${allow.map((a) => a.id).join(', ')}\n` +
    `  ${problems.length ? `PROBLEMS:\n    - ${problems.join('\n    - ')}` : 'ok'}`
  );
}
