import { OneGateClient, type ClientOptions } from './client.js';
import { oneGateSetup } from './config.js';
import { entryProblem } from './form.js';

export type OneGateResult = { published: true; keys: string[] } | { published: false; reason: string };

export interface PublishOptions extends ClientOptions {
  env: Record<string, string | undefined>;
  /** Values that must never leave the VM (the API keys): a pair holding one is refused. */
  secrets?: readonly string[];
  /** Tests: one-context's environment file under a temp root. */
  oneEnvFile?: string;
}

/** Names that say "secret": never published, whatever their value. */
const SECRET_NAME = /(^|_)(API_KEY|KEYS?|PASSWORD|TOKEN|SECRET)(_|$)/;

/** The client for this VM, or why there is none (one info line, naming what is missing). */
export async function connectOneGate(
  options: Omit<PublishOptions, 'secrets'>,
): Promise<{ client: OneGateClient } | { client: null; reason: string }> {
  const setup = await oneGateSetup(options.env, { oneEnvFile: options.oneEnvFile });
  if (!setup.configured) {
    options.log.info(`OneGate not configured: ${setup.missing}; nothing published`);
    return { client: null, reason: setup.missing };
  }
  return { client: new OneGateClient(setup.config, options) };
}

/** The pairs that may go out, and a warning line for each that may not (never naming a secret's value). */
function screen(data: Record<string, string>, secrets: readonly string[]) {
  const kept: Record<string, string> = {};
  const refused: string[] = [];
  for (const [key, value] of Object.entries(data)) {
    const secret = SECRET_NAME.test(key) || secrets.some((s) => s.length > 0 && value.includes(s));
    const problem = secret ? `${key}: holds a secret (API key): never published` : entryProblem(key, value);
    if (problem) refused.push(problem);
    else kept[key] = value;
  }
  return { kept, refused };
}

/**
 * Publishes pairs on this VM's USER_TEMPLATE (PUT /vm, type 1) so OpenNebula (and OneFlow) see them.
 * Never throws and never fails a boot: not configured, refused (401/404/…) or unreachable after the
 * bounded retries, it logs one line saying so and returns the reason.
 */
export async function publishToOneGate(data: Record<string, string>, options: PublishOptions): Promise<OneGateResult> {
  const { log } = options;
  const { kept, refused } = screen(data, options.secrets ?? []);
  for (const r of refused) log.warn(`OneGate: not publishing ${r}`);
  if (Object.keys(kept).length === 0) return { published: false, reason: 'nothing to publish' };
  const connected = await connectOneGate(options);
  if (!connected.client) return { published: false, reason: connected.reason };
  const { client } = connected;
  const result = await client.updateVm(kept);
  if (!result.ok) {
    const why = result.status === 401 ? ' (the VM token does not match this VM)' : '';
    log.warn(`OneGate at ${client.config.endpoint}: ${result.reason}${why}; nothing published (the VM serves anyway)`);
    return { published: false, reason: result.reason };
  }
  const keys = Object.keys(kept);
  log.info(`published to OneGate (VM ${client.config.vmId}): ${keys.join(', ')}`);
  return { published: true, keys };
}
