/**
 * The one list of checks of what a build profile needs on this machine, used by the build (before any
 * download or build: it refuses with every problem and its fix at once) and by the setup wizard
 * (which shows the same checks as ok/missing). The host's checks: ./preflight-host.ts; the inputs'
 * and the disk's: ./preflight-inputs.ts. Host access goes through HostProbes (./host-probes.ts).
 */
import { ExitCode, TaskError } from '@slm-copilot/task-kit';
import type { BuildProfile } from './build-vars.js';
import type { Check } from './check.js';
import type { HostProbes } from './host-probes.js';
import { kvmCheck, ramCheck, rootCheck, toolChecks } from './preflight-host.js';
import { diskChecks, lockCheck, mirrorChecks, type PreflightInput } from './preflight-inputs.js';

export { gb, type Check, type CheckStatus } from './check.js';
export { BUILD_VM_MIB, toolsFor } from './preflight-host.js';
export { CACHE_BYTES, IMAGE_OVERHEAD_BYTES, type PreflightInput } from './preflight-inputs.js';

/** What the build reaches over the network, per profile (told, not probed). */
export function networkNeeds(profile: BuildProfile): string {
  if (profile === 'test') return 'the npm registry (llama.cpp source, Node runtime) and Debian apt (the base image)';
  if (profile === 'offline')
    return 'the npm registry (llama.cpp source, Node runtime); every other input from the mirror';
  return 'the internet (Ubuntu cloud image, LocalAI, the model) and the npm registry (llama.cpp source, Node runtime)';
}

/** Every check of a profile, in the order shown; all run (the user sees every problem at once). */
export async function preflightChecks(input: PreflightInput, probes: HostProbes): Promise<Check[]> {
  const profile = input.recipe.profile;
  const [tools, kvm, disk, mirror, ram] = await Promise.all([
    toolChecks(profile, probes),
    kvmCheck(profile, probes),
    diskChecks(input, probes),
    mirrorChecks(input.recipe, probes),
    ramCheck(profile, probes),
  ]);
  const network: Check = {
    name: 'network',
    status: 'info',
    detail: `the ${profile} build needs ${networkNeeds(profile)}`,
    blocking: false,
  };
  return [...lockCheck(input.recipe), kvm, ...rootCheck(profile, probes), ...tools, ...disk, ...mirror, ram, network];
}

/** The refusal for the blocking checks (undefined when none): every problem with its fix, one TaskError. */
export function preflightError(profile: BuildProfile, checks: readonly Check[]): TaskError | undefined {
  const blocking = checks.filter((c) => c.blocking);
  if (blocking.length === 0) return undefined;
  const lines = blocking.map((c) => `  ${c.name}: ${c.detail}${c.fix ? `\n    fix: ${c.fix}` : ''}`);
  const count = blocking.length === 1 ? '1 problem' : `${blocking.length} problems`;
  return new TaskError(
    `the ${profile} build cannot start on this machine (${count}; nothing was downloaded or built):\n` +
      lines.join('\n'),
    { exitCode: ExitCode.environment },
  );
}
