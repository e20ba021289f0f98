import { readFile } from 'node:fs/promises';
import type { AppliancePaths, Config } from '@slm-copilot/context-schema';
import { API_KEY_PATTERN, ExitCode, generateApiKey, TaskError, writeFileAtomic } from '@slm-copilot/task-kit';
import type { ResolvedKeys } from './keys.js';

/**
 * The keys nginx accepts: ONEAPP_COPILOT_PASSWORD when set, else the key generated once and kept
 * (0600) in the state directory — generated now when `generate` is true and there is none yet.
 */
export async function resolveApiKeys(
  config: Config,
  paths: AppliancePaths,
  options: { generate?: boolean } = {},
): Promise<ResolvedKeys & { generated: boolean }> {
  if (config.apiKey) return { main: config.apiKey, extra: config.extraApiKeys, generated: false };
  const stored = (await readFile(paths.apiKeyFile, 'utf8').catch(() => '')).trim();
  if (stored) {
    if (!API_KEY_PATTERN.test(stored)) {
      throw new TaskError(`the stored API key in ${paths.apiKeyFile} is not a valid key`, {
        exitCode: ExitCode.integrity,
        hint: `delete ${paths.apiKeyFile} to generate a new one, or set ONEAPP_COPILOT_PASSWORD`,
      });
    }
    return { main: stored, extra: config.extraApiKeys, generated: false };
  }
  if (!options.generate) {
    throw new TaskError(`no API key: ONEAPP_COPILOT_PASSWORD is empty and ${paths.apiKeyFile} does not exist`, {
      exitCode: ExitCode.invalidConfig,
      hint: 'set ONEAPP_COPILOT_PASSWORD, or pass --generate-key to create and keep one',
    });
  }
  const key = generateApiKey();
  await writeFileAtomic(paths.apiKeyFile, `${key}\n`, { mode: 0o600 });
  return { main: key, extra: config.extraApiKeys, generated: true };
}
