/**
 * The wizard's view of the prerequisites: the build's own preflight (./preflight.ts) for the settings
 * being chosen, shown as ok/missing/low/info with each fix.
 */
import { styleText } from 'node:util';
import { readLock } from '@slm-copilot/model-fetch';
import { resolveBuildPaths, type BuildSettings } from './build-env.js';
import { recipeFor } from './build-plan.js';
import { hostProbes } from './host-probes.js';
import { LOCK_FILE } from './lock-file.js';
import { preflightChecks, type Check, type CheckStatus } from './preflight.js';
import { wrapWords } from './wrap.js';

const useColor = Boolean(process.stdout.isTTY) && !('NO_COLOR' in process.env);
export const paint = (format: Parameters<typeof styleText>[0], text: string): string =>
  useColor ? styleText(format, text) : text;

/** The checks the build runs before it starts, for these settings (the lock read once). */
export async function checksFor(settings: BuildSettings, baseDir: string): Promise<Check[]> {
  const resolved = resolveBuildPaths(settings, baseDir);
  const recipe = recipeFor({ ...settings, resolved }, await readLock(LOCK_FILE), LOCK_FILE);
  return preflightChecks({ recipe, outputDir: resolved.outputDir, cache: resolved.cache }, hostProbes);
}

/** One check a line (wrapped under its detail column), its status coloured. */
export function formatChecks(checks: readonly Check[]): string {
  const nameWidth = Math.max(...checks.map((c) => c.name.length));
  const indent = 8 + nameWidth + 2;
  // clack's note box takes about 6 columns of the terminal
  const width = Math.max(30, Math.min(process.stdout.columns || 80, 140) - 6 - indent);
  const label: Record<CheckStatus, string> = {
    ok: paint('green', 'ok     '),
    missing: paint('red', 'missing'),
    low: paint('yellow', 'low    '),
    info: paint('cyan', 'info   '),
  };
  return checks
    .map((c) => {
      const lines = [...wrapWords(c.detail, width), ...(c.fix ? wrapWords(`fix: ${c.fix}`, width) : [])];
      return lines
        .map((l, i) => (i === 0 ? `${label[c.status]} ${c.name.padEnd(nameWidth)}  ${l}` : `${' '.repeat(indent)}${l}`))
        .join('\n');
    })
    .join('\n');
}
