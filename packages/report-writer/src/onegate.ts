import { which } from 'zx';
import { sh, type Logger } from '@slm-copilot/task-kit';

export type OneGateResult = { published: true } | { published: false; reason: string };

/**
 * Publishes values on the VM (`onegate vm update --data KEY=value`) so OpenNebula shows them.
 * Skipped quietly (a debug line, no error) when the onegate tool or its endpoint is not there.
 */
export async function publishToOneGate(
  data: Record<string, string>,
  options: { env?: NodeJS.ProcessEnv; onegate?: string; log: Logger },
): Promise<OneGateResult> {
  const env = options.env ?? process.env;
  const onegate = options.onegate ?? (await which('onegate', { nothrow: true }));
  if (!onegate) return skip('no onegate command', options.log);
  if (!env.ONEGATE_ENDPOINT) return skip('no ONEGATE_ENDPOINT in the context', options.log);
  for (const [k, v] of Object.entries(data)) {
    if (!/^[A-Z0-9_]+$/.test(k) || /[\n\r]/.test(v)) throw new Error(`internal: bad OneGate entry ${k}`);
  }
  const args = Object.entries(data).flatMap(([k, v]) => ['--data', `${k}=${v}`]);
  const r = await sh({ nothrow: true, env, timeout: '30s' })`${onegate} vm update ${args}`;
  if (r.exitCode !== 0)
    return skip(`onegate failed (exit ${r.exitCode}): ${r.stderr.trim().split('\n').at(-1) ?? ''}`, options.log);
  options.log.info(`published to OneGate: ${Object.keys(data).join(', ')}`);
  return { published: true };
}

function skip(reason: string, log: Logger): OneGateResult {
  log.debug(`OneGate skipped: ${reason}`);
  return { published: false, reason };
}
