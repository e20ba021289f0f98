import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, sha256File, TaskError, writeFileAtomic, type Logger } from '@slm-copilot/task-kit';

/**
 * The manifest at the top of a mirror directory: every file's name, size and sha256, and where the
 * checksum came from.
 */
export const MIRROR_MANIFEST = 'mirror-manifest.json';

export interface MirrorFile {
  /** Path relative to the mirror directory (`apt/<x>.deb` for packages). */
  name: string;
  size: number;
  sha256: string;
  /** The upstream checksum the download was verified against, or how the file was made when none exists. */
  checksumSource: string;
  /** Where it was downloaded from (absent for files made locally). */
  url?: string;
}

export interface MirrorManifest {
  version: 1;
  createdAt: string;
  /** The pinned inputs the mirror was filled for (Ubuntu release, LocalAI version, model lock entry…). */
  inputs: Record<string, unknown>;
  files: MirrorFile[];
}

export async function writeMirrorManifest(dir: string, manifest: MirrorManifest): Promise<string> {
  const file = path.join(dir, MIRROR_MANIFEST);
  const files = [...manifest.files].sort((a, b) => a.name.localeCompare(b.name));
  await writeFileAtomic(file, `${JSON.stringify({ ...manifest, files }, null, 2)}\n`);
  return file;
}

export async function readMirrorManifest(dir: string): Promise<MirrorManifest> {
  const file = path.join(dir, MIRROR_MANIFEST);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new TaskError(`the mirror ${dir} has no ${MIRROR_MANIFEST}`, {
      exitCode: ExitCode.invalidConfig,
      hint: 'fill the mirror with `pnpm --filter @slm-copilot/scripts mirror -- --dir DIR` ' + 'on a connected machine',
    });
  }
  let m: MirrorManifest;
  try {
    m = JSON.parse(text) as MirrorManifest;
  } catch (error) {
    throw new TaskError(`${file} is not valid JSON: ${(error as Error).message}`, { exitCode: ExitCode.invalidConfig });
  }
  if (m?.version !== 1 || !Array.isArray(m.files))
    throw new TaskError(`${file} is not a version-1 mirror manifest`, { exitCode: ExitCode.invalidConfig });
  for (const f of m.files) {
    const bad = typeof f?.name !== 'string' || path.isAbsolute(f.name) || f.name.split('/').includes('..');
    if (bad || !Number.isSafeInteger(f.size) || !/^[0-9a-f]{64}$/.test(f.sha256 ?? '')) {
      throw new TaskError(`${file}: malformed entry ${JSON.stringify(f)}`, { exitCode: ExitCode.invalidConfig });
    }
  }
  return m;
}

export interface VerifyMirrorOptions {
  log?: Logger;
  /** Files every mirror of this profile must list (e.g. the model). */
  required?: readonly string[];
}

/**
 * Refuses a mirror whose files do not match its manifest: a missing file, a wrong size (checked for all
 * files first: cheap) or a wrong sha256 (then hashed, 14 GB included) — the error names the file.
 */
export async function verifyMirror(
  dir: string,
  options: VerifyMirrorOptions = {},
): Promise<{ ok: true; files: number; bytes: number }> {
  const manifest = await readMirrorManifest(dir);
  for (const name of options.required ?? []) {
    if (!manifest.files.some((f) => f.name === name)) {
      throw new TaskError(`mirror ${dir}: ${MIRROR_MANIFEST} lists no ${name}`, {
        exitCode: ExitCode.integrity,
        hint: 'refill the mirror with the `mirror` command',
      });
    }
  }
  for (const f of manifest.files) {
    const st = await stat(path.join(dir, f.name)).catch(() => undefined);
    if (!st?.isFile())
      throw new TaskError(`mirror ${dir}: ${f.name} is missing`, {
        exitCode: ExitCode.integrity,
        hint: 'refill the mirror with the `mirror` command',
      });
    if (st.size !== f.size) {
      throw new TaskError(`mirror ${dir}: ${f.name} has ${st.size} bytes, the manifest says ${f.size}`, {
        exitCode: ExitCode.integrity,
      });
    }
  }
  let bytes = 0;
  for (const f of manifest.files) {
    const actual = await (options.log
      ? options.log.phase(`sha256 ${f.name}`, () => sha256File(path.join(dir, f.name)))
      : sha256File(path.join(dir, f.name)));
    if (actual !== f.sha256) {
      throw new TaskError(`mirror ${dir}: ${f.name} has sha256 ${actual}, the manifest says ${f.sha256}`, {
        exitCode: ExitCode.integrity,
      });
    }
    bytes += f.size;
  }
  return { ok: true, files: manifest.files.length, bytes };
}

/** Files in the directory (recursively, relative names) that the manifest does not list, the manifest itself aside. */
export async function unlistedFiles(dir: string, manifest: MirrorManifest): Promise<string[]> {
  const listed = new Set(manifest.files.map((f) => f.name));
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (r !== MIRROR_MANIFEST && !listed.has(r)) out.push(r);
    }
  };
  await walk('');
  return out.sort();
}
