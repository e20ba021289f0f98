/**
 * oneflow-template: writes (or checks) the committed OneFlow service template, or prints it for a given
 * VM template id. `pnpm --filter @slm-copilot/scripts generate:oneflow`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, runCommand, UsageError, writeFileAtomic } from '@slm-copilot/task-kit';
import { renderServiceTemplate, SERVICE_TEMPLATE_FILE } from './oneflow-template.js';

const TOOL = 'oneflow-template';
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const SPEC = {
  name: TOOL,
  summary: 'write the committed OneFlow service template, or print it for a VM template id',
  usage: `${TOOL} [--check] [--template-id ID]`,
  options: { check: { type: 'boolean', default: false }, 'template-id': { type: 'string' } },
  details:
    'Examples:\n' +
    `  ${TOOL}                     # rewrite ${SERVICE_TEMPLATE_FILE}\n` +
    `  ${TOOL} --check             # exit 1 when the committed file is stale\n` +
    `  ${TOOL} --template-id 42    # print the template for VM template 42 (for oneflow-template create)`,
} as const;

const OPTION_HELP = {
  check: 'only compare the committed file with a fresh one; exit 1 if they differ',
  'template-id': 'the ID of the SLM-Copilot VM template in OpenNebula: print the template for it to stdout',
};

export function main(argv: string[]): Promise<number> {
  return runCommand(SPEC, OPTION_HELP, argv, async ({ values, log }) => {
    const id = values['template-id'];
    if (typeof id === 'string') {
      if (!/^\d+$/.test(id))
        throw new UsageError(`--template-id: "${id}" is not a VM template ID (expected 0, 1, 2 …)`);
      process.stdout.write(renderServiceTemplate({ templateId: Number(id) }));
      return ExitCode.ok;
    }
    const file = path.join(REPO_ROOT, SERVICE_TEMPLATE_FILE);
    const text = renderServiceTemplate();
    if (values.check) {
      const current = await readFile(file, 'utf8').catch(() => '');
      if (current === text) return ExitCode.ok;
      log.error(`${SERVICE_TEMPLATE_FILE} is out of date: run pnpm --filter @slm-copilot/scripts generate:oneflow`);
      return ExitCode.failure;
    }
    log.info(`${SERVICE_TEMPLATE_FILE}: ${await writeFileAtomic(file, text)}`);
    return ExitCode.ok;
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
