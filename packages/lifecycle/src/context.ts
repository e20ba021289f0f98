import { readFile } from 'node:fs/promises';
import { parseContextFile, VARIABLE_PREFIX } from '@slm-copilot/context-schema';
import { ExitCode, TaskError, type Logger } from '@slm-copilot/task-kit';

/**
 * The context the stage runs with: one-context exports the variables into the environment;
 * without one-context (the test image), a context.sh from the CONTEXT CD, read — never executed.
 */
export async function loadContext(
  contextFile: string | undefined,
  log: Logger,
): Promise<Record<string, string | undefined>> {
  if (!contextFile) {
    const count = Object.keys(process.env).filter((k) => k.startsWith(VARIABLE_PREFIX)).length;
    log.info(`context: ${count} ${VARIABLE_PREFIX}* variable(s) from the environment`);
    return process.env;
  }
  let text: string;
  try {
    text = await readFile(contextFile, 'utf8');
  } catch (error) {
    throw new TaskError(`cannot read the context file ${contextFile}: ${(error as Error).message}`, {
      exitCode: ExitCode.environment,
    });
  }
  const { values, warnings } = parseContextFile(text);
  for (const w of warnings) log.warn(`${contextFile}: ${w}`);
  log.info(
    `context: ${Object.keys(values).filter((k) => k.startsWith(VARIABLE_PREFIX)).length} ${VARIABLE_PREFIX}* variable(s) from ${contextFile}`,
  );
  // ONEGATE_ENDPOINT, VMID, … ride along for OneGate.
  return { ...process.env, ...values };
}
