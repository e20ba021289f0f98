/**
 * The command-line options of the build settings, made from BUILD_VARS (the one list): the build
 * command and the setup wizard both take them from here, so a setting added to build-vars.ts is a
 * flag of both without a second hand-written list.
 */
import type { BuildFlags } from './build-env.js';
import { BUILD_VARS, buildVars, settingText, type BuildSettingKey } from './build-vars.js';

/** `--context-size` → `context-size` (parseArgs' option name). */
export const optionName = (key: BuildSettingKey): string => BUILD_VARS[key].flag.replace(/^--/, '');

/** parseArgs options for every build setting (all strings: BUILD_VARS parses and checks them). */
export function buildVarOptions(): Record<string, { type: 'string' }> {
  return Object.fromEntries(buildVars().map((v) => [optionName(v.key), { type: 'string' as const }]));
}

/** The help line of each setting's flag: its variable, what is allowed and the default. */
export function buildVarOptionHelp(): Record<string, string> {
  return Object.fromEntries(
    buildVars().map((v) => [
      optionName(v.key),
      `${v.name}: ${v.expected}${v.default === undefined ? '' : ` (default ${settingText(v.default)})`}`,
    ]),
  );
}

/**
 * A usage line: `head` then `[--profile PROFILE] [--model ID] …` and `tail`, wrapped at `width`
 * (continuation lines indented under the command, as the help's "Usage: " prefix leaves it).
 */
export function usageLine(head: string, tail: string[] = [], width = 110): string {
  const groups = [...buildVars().map((v) => `[${v.flag} ${v.placeholder}]`), ...tail];
  const lines = [head];
  for (const g of groups) {
    const last = lines.length - 1;
    if (`${lines[last]} ${g}`.length > width) lines.push(`       ${g}`);
    else lines[last] = `${lines[last]} ${g}`;
  }
  return lines.join('\n');
}

/** The settings given on the command line (parseArgs values → BuildFlags); absent flags are left out. */
export function flagsFromValues(values: Record<string, unknown>): BuildFlags {
  const flags: BuildFlags = {};
  for (const v of buildVars()) {
    const value = values[optionName(v.key)];
    if (typeof value === 'string') flags[v.key] = value;
  }
  return flags;
}
