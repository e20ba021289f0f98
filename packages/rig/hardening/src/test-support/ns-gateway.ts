// Test support: the gateway (real nginx on a render under a temp root) and nginx-config's engine
// test double, both inside a network namespace of our own; clients on the host reach the gateway on
// the namespace's veth address, as a client on the network reaches the VM.
import { readFile } from 'node:fs/promises';
import { appliancePaths } from '@slm-copilot/context-schema';
import { ensureSelfSigned } from '@slm-copilot/nginx-config';
import {
  startGateway,
  tempRoot,
  type Gateway,
  type StartGatewayOptions,
} from '@slm-copilot/nginx-config/test-support/nginx';
import type { Netns } from './netns.js';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';

export const MAIN_KEY = 'sk-hardening-main-0123456789abcdef';
export const HOST = 'copilot.example.test';

export interface NsGateway {
  gateway: Gateway;
  /** PEM of the per-VM CA that signed the served leaf. */
  ca: string;
  caFile: string;
  stop(): Promise<void>;
}

/**
 * Renders the gateway for `env` (llama-server engine on `enginePort`, rate limit off unless `env`
 * says otherwise), with a per-VM CA and a leaf for HOST and the namespace's address, and starts
 * nginx inside `ns` listening on all of the namespace's IPv4 addresses.
 */
export async function startNsGateway(
  ns: Netns,
  opts: { tag: string; enginePort: number; env?: Record<string, string>; mutate?: StartGatewayOptions['mutate'] },
): Promise<NsGateway> {
  const root = await tempRoot(`hardening-${opts.tag}`);
  const paths = appliancePaths(root);
  const ss = await ensureSelfSigned({ paths, hostname: HOST, ipAddresses: [ns.nsAddress], log: quietLog });
  const gateway = await startGateway({
    root,
    tls: ss.served,
    trustFile: paths.tls.caCert,
    enginePort: opts.enginePort,
    keys: { main: MAIN_KEY, extra: [] },
    env: {
      ONEAPP_COPILOT_PASSWORD: MAIN_KEY,
      ONEAPP_COPILOT_ENGINE: 'llama-server',
      ONEAPP_COPILOT_HOSTNAME: HOST,
      ONEAPP_COPILOT_TLS_MODE: 'self-signed',
      ONEAPP_COPILOT_RATE_LIMIT: '0',
      ...opts.env,
    },
    render: { listenAddresses: ['*'] },
    ...(opts.mutate ? { mutate: opts.mutate } : {}),
    wrap: ns.exec,
    readyAddress: ns.nsAddress,
  });
  return {
    gateway,
    ca: await readFile(paths.tls.caCert, 'utf8'),
    caFile: paths.tls.caCert,
    stop: () => gateway.stop(),
  };
}
