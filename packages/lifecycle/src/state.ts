import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AppliancePaths } from '@slm-copilot/context-schema';
import type { ServedCertificate } from '@slm-copilot/nginx-config';
import { ExitCode, TaskError, writeFileAtomic, type HostFacts } from '@slm-copilot/task-kit';

/** What the install stage baked into the image, read by every boot. */
export interface InstalledImage {
  engineDefault: 'localai' | 'llama-server';
  model: { file: string; sha256: string; source: string | null };
  /**
   * LocalAI as installed: the release, or (`standIn: true`, test image only) the stand-in script
   * that cannot serve. null only in images built before both engines were installed.
   */
  localai: { version: string; sha256: string; standIn?: boolean } | null;
  /** llama-server (every image): the binary's sha256, where the archive came from, its CPU variants. */
  llamaServer: { sha256: string; source: string; variants?: string[] } | null;
  builtAt: string;
}

/** What configure decided that bootstrap needs to render the gateway and engine again (fallback). */
export interface RenderFacts {
  host: HostFacts;
  tls: ServedCertificate;
}

/** Left by configure for bootstrap: what changed and must be (re)started, and what to report. */
export interface PendingWork {
  restartEngine: boolean;
  engineUnit: string;
  letsEncrypt: boolean;
  warnings: string[];
  reportInputsFile: string;
  /** Absent when written by an older configure: bootstrap then cannot fall back. */
  render?: RenderFacts;
}

export const stateFiles = (paths: AppliancePaths) => ({
  installed: path.join(paths.configDir, 'installed.json'),
  lastGoodContext: path.join(paths.stateDir, 'last-good-context.json'),
  pending: path.join(paths.stateDir, 'pending.json'),
  reportInputs: path.join(paths.stateDir, 'report-inputs.json'),
});

export async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** State files may hold keys: always 0600. */
export function writeJson(file: string, value: unknown): Promise<unknown> {
  return writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
}

/**
 * What the install stage baked into the image. Missing: this root is no installed appliance, and a
 * stage refuses before writing anything (a status file or /etc/motd on a host that is not the appliance).
 */
export async function requireInstalled(paths: AppliancePaths): Promise<InstalledImage> {
  const file = stateFiles(paths).installed;
  const installed = await readJson<InstalledImage>(file);
  if (!installed) {
    throw new TaskError(`${file} is missing: this is not an appliance the install stage built; nothing was changed`, {
      exitCode: ExitCode.environment,
      hint: 'run the stage on the appliance (or give --root the root of one)',
    });
  }
  return installed;
}
