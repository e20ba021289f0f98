import { readFile } from 'node:fs/promises';
import { loadContext } from '@slm-copilot/context-schema';
import { ExitCode, TaskError, underRoot, withLock, writeFileAtomic, type Logger } from '@slm-copilot/task-kit';
import { bootstrap } from './bootstrap.js';
import { configure } from './configure.js';
import type { StageOptions } from './options.js';
import { runStage } from './runner.js';

/**
 * Applying a context without OpenNebula's one-context (the boot unit, and a CONTEXT CD swapped on a
 * running VM): the one lock both take, and the copy of the context last handed to the stages. /run is
 * a tmpfs, so the first run of every boot finds no copy and applies its CD.
 */
export const contextRunPaths = (root: string) => ({
  lock: underRoot(root || '/', '/run/lock/slm-copilot-context.lock'),
  applied: underRoot(root || '/', '/run/slm-copilot/applied-context.sh'),
});

/** Runs one stage (configure or bootstrap) on a context file, as the stage commands do; returns its exit code. */
export type ContextStageRunner = (stage: 'configure' | 'bootstrap', contextFile: string) => Promise<number>;

/**
 * The stages as `slm-copilot-service configure|bootstrap --context-file` run them under our runner
 * (status file, stage log, lock, motd), with the StageOptions `options` builds (tests: their doubles).
 */
export function contextStageRunner(
  root: string,
  options: (env: Record<string, string | undefined>, log: Logger) => StageOptions,
): ContextStageRunner {
  return (stage, contextFile) =>
    runStage(stage, root || '/', async (log) => {
      const opts = options(await loadContext(contextFile, log), log);
      await (stage === 'configure' ? configure(opts) : bootstrap(opts));
    });
}

export interface ApplyContextOptions {
  /** '' in the appliance; a temp dir in tests. */
  root: string;
  /** The context.sh to apply (read, never executed). */
  contextFile: string;
  /** Skip a context identical to the last one applied (a spurious or repeated media-change event). */
  ifChanged: boolean;
  runStage: ContextStageRunner;
  log: Logger;
  /** How long to wait for a run in progress (the boot run may take many minutes); default 60 min. */
  lockTimeoutMs?: number;
}

export interface ApplyContextResult {
  /** false: skipped, the context is the one last applied. */
  applied: boolean;
  /** The stages that ran, in order (bootstrap only after a configure that succeeded). */
  stages: ('configure' | 'bootstrap')[];
  exitCode: number;
}

async function readOrNull(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * Applies a context exactly as a boot does — configure, then bootstrap only when configure succeeded
 * (the same `configure && bootstrap` as one-apps' net-90-service-appliance), so a refused context
 * leaves the last good configuration serving and the stages restart only what changed — under one
 * exclusive lock, so two runs (the boot run, a CD change) never interleave.
 */
export async function applyContext(o: ApplyContextOptions): Promise<ApplyContextResult> {
  const paths = contextRunPaths(o.root);
  return withLock(
    paths.lock,
    async () => {
      const text = await readOrNull(o.contextFile);
      if (text === null)
        throw new TaskError(`the context file ${o.contextFile} does not exist`, { exitCode: ExitCode.environment });
      if (o.ifChanged && (await readOrNull(paths.applied)) === text) {
        o.log.info('the context is the one last applied: nothing to do');
        return { applied: false, stages: [], exitCode: ExitCode.ok };
      }
      // Recorded before the stages run, as one-contextd does (it copies the new context over the old one,
      // then runs the scripts): a refused context is not retried on every spurious change event, and the
      // stages read exactly the text that was compared.
      await writeFileAtomic(paths.applied, text, { mode: 0o600 });
      const configured = await o.runStage('configure', paths.applied);
      if (configured !== ExitCode.ok) {
        o.log.error('configure refused or failed: bootstrap skipped, the last good configuration keeps serving');
        return { applied: true, stages: ['configure'], exitCode: configured };
      }
      const bootstrapped = await o.runStage('bootstrap', paths.applied);
      return { applied: true, stages: ['configure', 'bootstrap'], exitCode: bootstrapped };
    },
    { what: 'slm-copilot context', timeoutMs: o.lockTimeoutMs, log: o.log },
  );
}
