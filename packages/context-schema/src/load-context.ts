import { readFile } from 'node:fs/promises';
import { ExitCode, TaskError, type Logger } from '@slm-copilot/task-kit';
import { parseContextFile } from './context-file.js';
import { VARIABLE_PREFIX } from './schema.js';

const counted = (values: Record<string, unknown>) =>
  Object.keys(values).filter((k) => k.startsWith(VARIABLE_PREFIX)).length;

/**
 * THE context loader of every command. one-context exports the variables into the environment;
 * without one-context (the test image, an operator's check), a context.sh is read — never executed.
 * An unreadable file is a TaskError naming it (ExitCode.environment); lines the reader could not
 * take, or values a shell would have expanded, are logged as warnings naming the file.
 */
export async function loadContext(
  contextFile: string | undefined,
  log: Logger,
): Promise<Record<string, string | undefined>> {
  if (!contextFile) {
    log.info(`context: ${counted(process.env)} ${VARIABLE_PREFIX}* variable(s) from the environment`);
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
  log.info(`context: ${counted(values)} ${VARIABLE_PREFIX}* variable(s) from ${contextFile}`);
  // ONEGATE_ENDPOINT, VMID, … ride along for OneGate; the ONEAPP_* context is the file's alone.
  const environment = Object.entries(process.env).filter(([k]) => !k.startsWith(VARIABLE_PREFIX));
  return { ...Object.fromEntries(environment), ...values };
}
