// `slm-copilot-service cache save|restore`: what the prompt-cache unit (slm-copilot-engine-cache.service)
// runs before the engine stops and once it has started. Exit 0 whatever the engine says (a failed
// restore must not fail the unit, or its ExecStop, the next save, would never run); 2 on usage errors.
import path from 'node:path';
import {
  ExitCode,
  flagInt,
  flagSeconds,
  flagString,
  runCommand,
  runSubcommands,
  UsageError,
} from '@slm-copilot/task-kit';
import { restoreSlots, saveSlots } from './slots.js';

const NAME = 'slm-copilot-service cache';
const DEFAULT_ENGINE = 'http://127.0.0.1:8080';
/** The engine's own start bound (localai-install START_TIMEOUT_SECONDS); the unit renders the same. */
const DEFAULT_READY_TIMEOUT_S = 900;

const common = {
  dir: { type: 'string' },
  engine: { type: 'string' },
} as const;
const commonHelp = {
  dir: "the engine's --slot-save-path (the saved slots' directory)",
  engine: `the engine's loopback URL (default ${DEFAULT_ENGINE})`,
};

function dirOf(values: Record<string, unknown>): string {
  const dir = flagString(values.dir);
  if (!dir) throw new UsageError('missing option --dir');
  if (!path.isAbsolute(dir)) throw new UsageError(`--dir must be an absolute path, got "${dir}"`);
  return dir;
}

function engineOf(values: Record<string, unknown>): string {
  const engine = flagString(values.engine) ?? DEFAULT_ENGINE;
  let url: URL;
  try {
    url = new URL(engine);
  } catch {
    throw new UsageError(`--engine must be an http:// URL, got "${engine}"`);
  }
  if (url.protocol !== 'http:') throw new UsageError(`--engine must be an http:// URL, got "${engine}"`);
  return url.origin;
}

const examples = (action: string, extra: string) =>
  "Examples (as the prompt-cache unit runs it, as the engine's user):\n" +
  `  slm-copilot-service cache ${action} --dir /var/lib/slm-copilot-engine/slot-cache/<id> ${extra}`;

const saveCommand = (argv: string[]) =>
  runCommand(
    {
      name: `${NAME} save`,
      summary: "save every slot that served a request to the engine's slot directory",
      usage: `${NAME} save --dir DIR --max-file-bytes N [--engine URL]`,
      options: { ...common, 'max-file-bytes': { type: 'string' } },
      details:
        'A slot is saved only when the disk keeps 1 GiB free beyond the largest file it may take; the file\n' +
        'is written as <slot>.partial, synced, made 0600 and renamed, so a cut-off save is never restored.\n\n' +
        examples('save', '--max-file-bytes 10738352128'),
    },
    { ...commonHelp, 'max-file-bytes': "the largest file a slot can make (the RAM plan's slotState.fileMaxBytes)" },
    argv,
    async ({ values, log }) => {
      const dir = dirOf(values);
      const engine = engineOf(values);
      const maxFileBytes = flagInt(values['max-file-bytes'], 'max-file-bytes');
      if (maxFileBytes === undefined) throw new UsageError('missing option --max-file-bytes');
      await saveSlots({ engine, dir, maxFileBytes, log });
      return ExitCode.ok;
    },
  );

const restoreCommand = (argv: string[]) =>
  runCommand(
    {
      name: `${NAME} restore`,
      summary: 'once the engine answers, read every saved slot back into its slot',
      usage: `${NAME} restore --dir DIR [--engine URL] [--ready-timeout SECONDS]`,
      options: { ...common, 'ready-timeout': { type: 'string' } },
      details:
        'A file the engine refuses (damaged, or larger than the slot) is deleted.\n\n' +
        examples('restore', '--ready-timeout 900'),
    },
    { ...commonHelp, 'ready-timeout': `seconds to wait for the engine's /health (default ${DEFAULT_READY_TIMEOUT_S})` },
    argv,
    async ({ values, log }) => {
      const dir = dirOf(values);
      const engine = engineOf(values);
      const ready = flagSeconds(values['ready-timeout'], 'ready-timeout') ?? DEFAULT_READY_TIMEOUT_S;
      await restoreSlots({ engine, dir, readyTimeoutMs: ready * 1000, log });
      return ExitCode.ok;
    },
  );

export const cacheCommand = (argv: string[]): Promise<number> =>
  runSubcommands(
    NAME,
    "the engine's prompt cache across restarts (llama-server slots saved to disk; run by its systemd unit)",
    {
      save: { summary: 'save the slots before the engine stops', run: saveCommand },
      restore: { summary: 'restore the saved slots once the engine is ready', run: restoreCommand },
    },
    argv,
  );
