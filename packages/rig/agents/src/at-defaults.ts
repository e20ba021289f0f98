// One agent, one task, at the appliance's defaults: its own network namespace (when one can be made), the
// appliance with no ONEAPP_COPILOT_* override serving the testbed's 'agent' model (it ends its replies),
// and the agent's session against it. The per-agent tests that need nothing more start here.
import { ensureTinyModel } from '@slm-copilot/testbed';
import { startAppliance, type Appliance } from './appliance.js';
import { createSandbox, type Sandbox } from './netns.js';
import type { AgentName } from './pins.js';
import { session, type Runner, type Session } from './session.js';

export interface DefaultsRun {
  app: Appliance;
  s: Session;
  sandbox?: Sandbox;
  stop(): Promise<void>;
}

/** `sandboxed` is false when sandboxUnavailable() gave a reason (the run then reaches the host's network). */
export async function runAtDefaults(
  name: AgentName,
  runner: Runner,
  task: { prompt: string; timeoutMs: number; sandboxed: boolean },
): Promise<DefaultsRun> {
  const sandbox = task.sandboxed ? await createSandbox() : undefined;
  const app = await startAppliance({
    agents: [name],
    model: (build) => ensureTinyModel({ llama: build, variant: 'agent' }),
    address: sandbox?.address,
  }).catch(async (e: unknown) => {
    await sandbox?.destroy();
    throw e;
  });
  const stop = async () => {
    await app.stop();
    await sandbox?.destroy();
  };
  const s = await session(app, name, runner, { prompt: task.prompt, timeoutMs: task.timeoutMs, sandbox }).catch(
    async (e: unknown) => {
      await stop();
      throw e;
    },
  );
  return { app, s, sandbox, stop };
}
