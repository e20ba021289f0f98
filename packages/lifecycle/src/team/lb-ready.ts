// Role lb at boot: ready once its /readyz is 200, i.e. one inference node answers through it.
import { ExitCode, TaskError, type Logger } from '@slm-copilot/task-kit';
import { TEAM_UNIT } from './unit.js';

export async function waitForABackend(readyz: () => Promise<number>, timeoutMs: number, log: Logger): Promise<void> {
  const start = Date.now();
  log.info(`role lb: ${TEAM_UNIT} follows the service's inference nodes; waiting until one answers`);
  while ((await readyz()) !== 200) {
    if (Date.now() - start > timeoutMs) {
      throw new TaskError(`no inference node answered through the load balancer within ${timeoutMs / 1000} s`, {
        exitCode: ExitCode.environment,
        hint: `journalctl -u ${TEAM_UNIT} shows which nodes OneGate lists and why each is left out`,
      });
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
  log.info(`role lb: ready (an inference node answers) after ${Math.round((Date.now() - start) / 1000)} s`);
}
