// The team refresher's systemd unit (roles lb and inference only).
import path from 'node:path';
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';

export const TEAM_UNIT = 'slm-copilot-team.service';

/** The image's Node runtime and lifecycle bundle (appliance/install.sh puts them there). */
const NODE = '/opt/slm-copilot/node/bin/node';
const LIFECYCLE_CLI = '/opt/slm-copilot/bin/slm-copilot-service.mjs';
/** one-context's environment (ONEGATE_ENDPOINT, VMID, TOKENTXT as `export` lines): read, never executed. */
const ONE_ENV = '/var/run/one-context/one_env';

export const teamUnitPath = (paths: AppliancePaths) => path.join(paths.systemdDir, TEAM_UNIT);

/**
 * Ordered after nginx and the engine, so that at shutdown (OneFlow scaling in) it stops first: an
 * inference node publishes DRAINING=YES and waits for its requests in flight (bounded by the request
 * timeout) while nginx and the engine still serve them.
 */
export function renderTeamUnit(config: Config): string {
  const stopSeconds = config.requestTimeoutSeconds + 60;
  return `[Unit]
Description=SLM-Copilot service role ${config.role}: OneGate discovery and publishing
Wants=network-online.target
After=network-online.target nginx.service slm-copilot-engine.service

[Service]
Type=simple
ExecStart=${NODE} ${LIFECYCLE_CLI} team --context-file ${ONE_ENV}
Restart=always
RestartSec=10
TimeoutStopSec=${stopSeconds}
NoNewPrivileges=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`;
}
