// The full testssl.sh run (every default check, testssl's own sockets: SSLv2/SSLv3 really probed,
// ciphers, preferences, vulnerabilities, client simulation) against the gateway on the real nginx.
// 5-12 minutes on a busy 2-core machine, so it is not part of `test`; the quick set is (testssl.test.ts).
//
//   pnpm --filter @slm-copilot/hardening testssl:full [-- --json]
import { appliancePaths } from '@slm-copilot/context-schema';
import { ensureSelfSigned } from '@slm-copilot/nginx-config';
import { removeTempRoots, startGateway, tempRoot } from '@slm-copilot/nginx-config/test-support/nginx';
import { startUpstreamDouble } from '@slm-copilot/nginx-config/test-support/upstream-double';
import { quietLog } from './test-support/quiet-log.js';
import { judge, notable, readAllowList, runTestssl } from './testssl.js';

if (process.argv.includes('--help')) {
  process.stdout.write(
    'Usage: testssl-full [--json]\n\nFull testssl.sh run against the gateway (per-VM CA added, SAN host name, 127.0.0.1); exit 1 on a\nprotocol other than TLS 1.2/1.3 or a HIGH/CRITICAL finding outside testssl-allowlist.json.\n',
  );
  process.exit(0);
}
const HOST = 'copilot.example.test';
const allow = await readAllowList();
const double = await startUpstreamDouble(); // engine test double: testssl only talks TLS to nginx
const root = await tempRoot('testssl-full');
const paths = appliancePaths(root);
const ss = await ensureSelfSigned({ paths, hostname: HOST, ipAddresses: [], log: quietLog });
const gw = await startGateway({
  root,
  tls: ss.served,
  trustFile: paths.tls.caCert,
  enginePort: double.port,
  env: { ONEAPP_COPILOT_ENGINE: 'llama-server', ONEAPP_COPILOT_HOSTNAME: HOST, ONEAPP_COPILOT_TLS_MODE: 'self-signed' },
});
let code = 0;
try {
  process.stderr.write(`testssl (full) against ${HOST}:${gw.httpsPort} (127.0.0.1)…\n`);
  const run = await runTestssl({
    hostname: HOST,
    port: gw.httpsPort,
    ip: '127.0.0.1',
    caFile: paths.tls.caCert,
    mode: 'full',
    timeoutSeconds: 1800,
  });
  const problems = judge(run, allow, 'full');
  if (process.argv.includes('--json'))
    process.stdout.write(
      `${JSON.stringify({ seconds: run.seconds, problems, notable: notable(run), findings: run.findings }, null, 2)}\n`,
    );
  else {
    const proto = ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1', 'TLS1_2', 'TLS1_3'].map(
      (id) => `${id}: ${run.findings.find((f) => f.id === id)?.finding ?? '?'}`,
    );
    process.stdout.write(
      `testssl full: ${run.seconds.toFixed(0)} s, ${run.findings.length} findings\n  ${proto.join('\n  ')}\n` +
        `  MEDIUM or worse: ${
          notable(run)
            .map((f) => `${f.severity} ${f.id} (${f.finding})`)
            .join('; ') || 'none'
        }\n` +
        `  allowed: ${allow.map((a) => a.id).join(', ')}\n  ${problems.length ? `PROBLEMS:\n    - ${problems.join('\n    - ')}` : 'ok'}\n`,
    );
  }
  code = problems.length ? 1 : 0;
} finally {
  await gw.stop();
  await double.close();
  removeTempRoots();
}
process.exit(code);
