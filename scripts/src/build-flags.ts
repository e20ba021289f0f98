/**
 * The command-line options of the build settings, made from BUILD_VARS (the one list): the build
 * command and the setup wizard both take them from here, so a setting added to build-env.ts is a
 * flag of both without a second hand-written list.
 */
import { BUILD_VARS, buildVars, settingText, type BuildFlags, type BuildSettingKey } from './build-env.js';

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

/** The settings given on the command line (parseArgs values → BuildFlags); absent flags are left out. */
export function flagsFromValues(values: Record<string, unknown>): BuildFlags {
  const flags: BuildFlags = {};
  for (const v of buildVars()) {
    const value = values[optionName(v.key)];
    if (typeof value === 'string') flags[v.key] = value;
  }
  return flags;
}
