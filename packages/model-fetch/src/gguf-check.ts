// A `.gguf` destination only ever receives a file that parses as GGUF: a matching checksum proves
// the bytes are the ones named in the lock, not that the lock names a model.
import path from 'node:path';
import { ExitCode, TaskError } from '@slm-copilot/task-kit';
import { readGgufFacts, type GgufFacts } from './manifest.js';

/** True when the destination's name says it is a GGUF model (`*.gguf`, any case). */
export function wantsGguf(dest: string): boolean {
  return /\.gguf$/i.test(dest);
}

/** The GGUF facts of `file`, or why it does not parse as GGUF. */
export async function parseGguf(file: string): Promise<{ facts: GgufFacts } | { reason: string }> {
  try {
    return { facts: await readGgufFacts(file) };
  } catch (error) {
    const message = (error as Error).message.replace(/^cannot read the GGUF header of [^:]+: /, '');
    return { reason: message.replace(`${file}: `, '') };
  }
}

/**
 * The refusal for a file whose SHA-256 matched but which is not a GGUF model. `kept` is where the
 * file is now (moved aside, or left in place when it was already installed by an older version).
 */
export function notGgufError(opts: { dest: string; source: string | null; reason: string; kept: string }): TaskError {
  const from = opts.source ? ` from ${opts.source}` : '';
  return new TaskError(
    `${path.basename(opts.dest)}${from} matches the expected SHA-256 but is not a GGUF model (${opts.reason}): ` +
      `refusing to install it as ${opts.dest}; the file is kept as ${opts.kept}`,
    {
      exitCode: ExitCode.integrity,
      hint:
        'the expected checksum (artifacts.lock.json entry or --sha256) describes a file that is not a model: ' +
        "check that entry's url and sha256 (for a catalog model, resolve it again from the hub)",
    },
  );
}
