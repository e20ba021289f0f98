import { existsSync } from 'node:fs';
import path from 'node:path';
import type { AppliancePaths } from '@slm-copilot/context-schema';
import { createLogger, ensureDir, sha256File, writeFileAtomic, type Logger } from '@slm-copilot/task-kit';

/**
 * How the stand-in fails: `exit` exits at once with an error (the unit crash-loops); `hang` starts
 * and then sleeps forever: it never listens, never becomes ready and uses no CPU.
 */
export const STAND_IN_MODES = ['exit', 'hang'] as const;
export type StandInMode = (typeof STAND_IN_MODES)[number];
export const DEFAULT_STAND_IN_MODE: StandInMode = 'exit';

/** The file that picks the stand-in's failure mode (one word; missing = `exit`), next to the binary. */
export function standInModeFile(paths: AppliancePaths): string {
  return path.join(path.dirname(paths.engine.localaiBinary), 'stand-in-mode');
}

export const STAND_IN_MARKER = 'STAND-IN, not LocalAI';

/**
 * The stand-in `local-ai` of the test image: LocalAI cannot be downloaded on the machines that
 * build it, so this script takes its place and can never serve. It exists so that the boot's
 * fallback to llama-server is exercised for real; nothing it does counts as LocalAI's behaviour.
 * Pure: same paths, same bytes.
 */
export function renderLocalAiStandIn(paths: AppliancePaths): string {
  const modeFile = standInModeFile(paths);
  const modes = STAND_IN_MODES.join('|');
  return `#!/bin/sh
# ${STAND_IN_MARKER}: LocalAI cannot be downloaded on the machines that build the test image.
# This script stands in for ${paths.engine.localaiBinary} and can never serve.
# Failure mode: the first word of ${modeFile} (${modes}; missing or empty: ${DEFAULT_STAND_IN_MODE}).
#   exit  exits at once with status 1 (systemd restarts it until the unit fails)
#   hang  starts, never listens and never becomes ready, using no CPU (sleeps forever)
# Rendered by SLM-Copilot (localai-install, stand-in.ts).
mode=${DEFAULT_STAND_IN_MODE}
if [ -r '${modeFile}' ]; then read -r mode _ < '${modeFile}' || true; fi
[ -n "$mode" ] || mode=${DEFAULT_STAND_IN_MODE}
case "$mode" in
  exit)
    echo "local-ai ${STAND_IN_MARKER} (test image): cannot serve; exiting (mode exit, from ${modeFile})" >&2
    exit 1 ;;
  hang)
    echo "local-ai ${STAND_IN_MARKER} (test image): cannot serve; hanging without listening (mode hang)" >&2
    exec sleep infinity ;;
  *)
    echo "local-ai ${STAND_IN_MARKER}: unknown mode '$mode' in ${modeFile} (expected ${modes})" >&2
    exit 2 ;;
esac
`;
}

export interface LocalAiStandInInstall {
  binary: string;
  sha256: string;
  modeFile: string;
  mode: StandInMode;
}

/**
 * Installs the stand-in `local-ai` (0755) and its mode file (0644, `exit` unless one is already
 * there, so a test that switched the mode keeps it). Idempotent.
 */
export async function installLocalAiStandIn(
  paths: AppliancePaths,
  log: Logger = createLogger(),
): Promise<LocalAiStandInInstall> {
  const binary = paths.engine.localaiBinary;
  await ensureDir(path.dirname(binary), 0o755);
  await writeFileAtomic(binary, renderLocalAiStandIn(paths), { mode: 0o755 });
  const modeFile = standInModeFile(paths);
  if (!existsSync(modeFile)) await writeFileAtomic(modeFile, `${DEFAULT_STAND_IN_MODE}\n`, { mode: 0o644 });
  log.warn(`installed a ${STAND_IN_MARKER} at ${binary} (it cannot serve; mode file ${modeFile})`);
  return { binary, sha256: await sha256File(binary), modeFile, mode: DEFAULT_STAND_IN_MODE };
}
