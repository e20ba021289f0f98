/**
 * Where OneGate is and who this VM is, from what the VM received. Facts (read, not copied):
 * - OpenNebula/one f847cf2e9a78da302cd0344505f93eadc43a6d28 src/vm/VirtualMachineContext.cc
 *   (generate_token_context): `TOKEN = "YES"` in the VM template's CONTEXT puts ONEGATE_ENDPOINT (oned.conf's)
 *   and VMID into the context; src/vm/History.cc writes the token to `token.txt` on the context CD.
 * - OpenNebula/one-apps ae5a43e411bde941f46b1e8e314eccf5c7a327b2 context-linux/src/etc/one-context.d/loc-16-gen-env:
 *   the token is the ONEGATE_TOKEN context variable when set, else `${MOUNT_DIR:-/mnt}/token.txt`; it is
 *   kept as `export TOKENTXT="…"` in /var/run/one-context/one_env (0400) with VMID and ONEGATE_ENDPOINT.
 * - same commit, context-linux/src/usr/sbin/one-contextd: the CD is mounted on a temporary MOUNT_DIR
 *   (/var/run/one-context/mount.XXXXXX), exported to the context scripts and removed when they end.
 * - same commit, context-linux/src/usr/bin/onegate(.rb): the official client reads VMID, TOKENTXT and
 *   ONEGATE_ENDPOINT from the environment after sourcing one_env.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** one-context's environment file (loc-16-gen-env), where the token outlives the CD's mount. */
export const ONE_ENV_FILE = '/var/run/one-context/one_env';

export interface OneGateConfig {
  /** ONEGATE_ENDPOINT, e.g. http://169.254.16.9:5030 (oned.conf's example). */
  endpoint: string;
  vmId: string;
  token: string;
  /** Where the token came from (for log lines; never the token). */
  tokenFrom: string;
}

export type OneGateSetup = { configured: true; config: OneGateConfig } | { configured: false; missing: string };

const readText = (file: string) =>
  readFile(file, 'utf8').then(
    (t) => t,
    () => null,
  );

/** TOKENTXT from one_env: the line `export TOKENTXT="…"` loc-16-gen-env writes. */
export function tokenFromOneEnv(text: string): string | null {
  const line = /^export TOKENTXT="([^"\n]*)"$/m.exec(text);
  return line?.[1] ? line[1] : null;
}

/** The token, in loc-16-gen-env's order, then what it leaves behind (TOKENTXT, one_env). */
async function findToken(
  env: Record<string, string | undefined>,
  oneEnvFile: string,
): Promise<{ token: string; from: string } | null> {
  if (env.ONEGATE_TOKEN) return { token: env.ONEGATE_TOKEN, from: 'ONEGATE_TOKEN' };
  if (env.TOKENTXT) return { token: env.TOKENTXT, from: 'TOKENTXT' };
  if (env.MOUNT_DIR) {
    const file = path.join(env.MOUNT_DIR, 'token.txt');
    const token = (await readText(file))?.trim();
    if (token) return { token, from: file };
  }
  const oneEnv = await readText(oneEnvFile);
  const token = oneEnv === null ? null : tokenFromOneEnv(oneEnv);
  return token ? { token, from: oneEnvFile } : null;
}

/**
 * OneGate's address, this VM's id and its token, or what is missing (one phrase, for the one log line).
 * `oneEnvFile` is for tests (a temp root).
 */
export async function oneGateSetup(
  env: Record<string, string | undefined>,
  options: { oneEnvFile?: string } = {},
): Promise<OneGateSetup> {
  const oneEnvFile = options.oneEnvFile ?? ONE_ENV_FILE;
  const hint = `(OpenNebula sets it when the VM template's CONTEXT has TOKEN="YES")`;
  if (!env.ONEGATE_ENDPOINT) return { configured: false, missing: `no ONEGATE_ENDPOINT in the context ${hint}` };
  try {
    const url = new URL(env.ONEGATE_ENDPOINT);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(url.protocol);
  } catch {
    return {
      configured: false,
      missing: `ONEGATE_ENDPOINT ${JSON.stringify(env.ONEGATE_ENDPOINT)} is not an http(s) URL`,
    };
  }
  if (!env.VMID || !/^\d+$/.test(env.VMID)) {
    const got = env.VMID ? `VMID ${JSON.stringify(env.VMID)} is not a number` : 'no VMID in the context';
    return { configured: false, missing: `${got} ${hint}` };
  }
  const token = await findToken(env, oneEnvFile);
  if (!token) {
    const where = [env.MOUNT_DIR ? path.join(env.MOUNT_DIR, 'token.txt') : null, oneEnvFile].filter(Boolean);
    return {
      configured: false,
      missing: `no OneGate token (no ONEGATE_TOKEN or TOKENTXT, nothing in ${where.join(' or ')})`,
    };
  }
  return {
    configured: true,
    config: { endpoint: env.ONEGATE_ENDPOINT, vmId: env.VMID, token: token.token, tokenFrom: token.from },
  };
}
