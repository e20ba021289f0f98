// 2. TLS: testssl.sh against the real nginx on the render, serving the per-VM CA's leaf; testssl
// trusts that CA (--add-ca) and tests a name from the SANs while connecting to 127.0.0.1 (--ip).
// The quick set runs here; the full run is `pnpm --filter @slm-copilot/hardening testssl:full`.
import { existsSync } from 'node:fs';
import { appliancePaths } from '@slm-copilot/context-schema';
import { ensureSelfSigned } from '@slm-copilot/nginx-config';
import { mutation } from '@slm-copilot/nginx-config/test-support/mutate';
import {
  removeTempRoots,
  startGateway,
  tempRoot,
  type Gateway,
  type StartGatewayOptions,
} from '@slm-copilot/nginx-config/test-support/nginx';
import { startUpstreamDouble, type UpstreamDouble } from '@slm-copilot/nginx-config/test-support/upstream-double';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';
import { judge, notable, readAllowList, runTestssl, type AllowListEntry } from './testssl.js';

const HOST = 'copilot.example.test';
const hasTestssl = existsSync('/usr/bin/testssl');
let double: UpstreamDouble;
const gateways: Gateway[] = [];
let allow: AllowListEntry[];

async function gateway(tag: string, opts: { foreignCa?: boolean; mutate?: StartGatewayOptions['mutate'] } = {}) {
  const root = await tempRoot(`testssl-${tag}`);
  const paths = appliancePaths(root);
  const ss = await ensureSelfSigned({ paths, hostname: HOST, ipAddresses: [], log: quietLog });
  let served = ss.served;
  if (opts.foreignCa) {
    // The same names, signed by another CA than the one testssl is told to trust.
    const other = appliancePaths(await tempRoot(`testssl-${tag}-foreign`));
    served = (await ensureSelfSigned({ paths: other, hostname: HOST, ipAddresses: [], log: quietLog })).served;
  }
  const gw = await startGateway({
    root,
    tls: served,
    trustFile: paths.tls.caCert,
    enginePort: double.port,
    env: {
      ONEAPP_COPILOT_ENGINE: 'llama-server',
      ONEAPP_COPILOT_HOSTNAME: HOST,
      ONEAPP_COPILOT_TLS_MODE: 'self-signed',
    },
    ...(opts.mutate ? { mutate: opts.mutate } : {}),
  });
  gateways.push(gw);
  return { gw, caFile: paths.tls.caCert };
}

beforeAll(async () => {
  allow = await readAllowList();
  double = await startUpstreamDouble();
}, 60_000);

afterAll(async () => {
  for (const g of gateways) await g.stop();
  await double?.close();
  removeTempRoots();
}, 30_000);

describe('testssl.sh (quick set: protocols + server defaults)', () => {
  it('the allow-list names each finding with the reason it cannot apply', () => {
    expect(allow.length).toBeGreaterThan(0);
    for (const e of allow) expect(e.reason.length).toBeGreaterThan(40);
  });

  it('TLS 1.2/1.3 only; the chain verifies against the per-VM CA; no HIGH/CRITICAL beyond allow-list', async (ctx) => {
    if (!hasTestssl) ctx.skip(); // apt-get install testssl.sh (scripts/apt-packages.json lists it)
    const { gw, caFile } = await gateway('good');
    const run = await runTestssl({
      hostname: HOST,
      port: gw.httpsPort,
      ip: '127.0.0.1',
      caFile,
      mode: 'quick',
      timeoutSeconds: 240,
    });
    const problems = judge(run, allow, 'quick');
    const shownArgs = run.args
      .filter((a) => a.startsWith('--') && !['--jsonfile', '--add-ca', '--ip'].includes(a))
      .join(' ');
    console.log(
      `testssl quick (${shownArgs}): ${run.seconds.toFixed(0)} s, ${run.findings.length} findings; ` +
        `MEDIUM+: ${
          notable(run)
            .map((f) => `${f.severity} ${f.id} (${f.finding})`)
            .join('; ') || 'none'
        }; allowed: ${allow.map((a) => a.id).join(', ')}`,
    );
    expect(problems, run.output.slice(-3000)).toEqual([]);
    // The allow-list is not a blanket: each allowed id really occurs (else it should be removed).
    for (const e of allow)
      expect(
        run.findings.some((f) => f.id === e.id),
        `${e.id} no longer reported`,
      ).toBe(true);
  }, 300_000);

  it('mutation: TLS 1.3 removed and a leaf from another CA make the same check fail', async (ctx) => {
    if (!hasTestssl) ctx.skip();
    const { gw, caFile } = await gateway('mutant', {
      foreignCa: true,
      mutate: mutation('slm-copilot.conf', 'ssl_protocols TLSv1.2 TLSv1.3;', 'ssl_protocols TLSv1.2;'),
    });
    const run = await runTestssl({
      hostname: HOST,
      port: gw.httpsPort,
      ip: '127.0.0.1',
      caFile,
      mode: 'quick',
      timeoutSeconds: 240,
    });
    const problems = judge(run, allow, 'quick');
    console.log(`testssl quick on the mutant: ${run.seconds.toFixed(0)} s; problems: ${problems.join('; ')}`);
    expect(problems.some((p) => p.startsWith('TLS1_3 must be offered'))).toBe(true);
    expect(problems.some((p) => /cert_chain_of_trust/.test(p))).toBe(true);
  }, 300_000);
});
