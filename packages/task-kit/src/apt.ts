import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { ExitCode, TaskError } from './errors.js';
import type { Logger } from './log.js';
import { sh } from './shell.js';

/** Where a mirror keeps the Ubuntu/Debian packages the install stage adds: `<mirror>/apt/*.deb`. */
export const APT_MIRROR_SUBDIR = 'apt';

export interface DebInfo {
  file: string;
  package: string;
  version: string;
  architecture: string;
}

export interface AptFromMirrorOptions {
  log?: Logger;
  /** `apt-get -s`: resolve and report, change nothing (tests; a dry run). */
  simulate?: boolean;
  /** Installed packages (name → version); default read from dpkg. Tests inject it. */
  installed?: ReadonlyMap<string, string>;
}

export interface AptFromMirrorResult {
  /** Requested packages that were missing. */
  missing: string[];
  /** The .deb files handed to apt-get (new packages, or newer than the installed version). */
  debs: string[];
  /** apt-get's output (the plan when simulating). */
  output: string;
}

/** Installed packages and versions, from dpkg's database. */
export async function installedPackages(): Promise<Map<string, string>> {
  const r = await sh({ nothrow: true })`dpkg-query -W -f=${'${Package}\t${Version}\t${db:Status-Abbrev}\n'}`;
  const map = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const [name, version, status] = line.split('\t');
    if (name && version && status?.startsWith('ii')) map.set(name, version);
  }
  return map;
}

/** Package, version and architecture of each `.deb` in a directory (sorted by file name). */
export async function readDebs(dir: string): Promise<DebInfo[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.deb')).sort();
  const out: DebInfo[] = [];
  for (const n of names) {
    const file = path.join(dir, n);
    const r = await sh({ nothrow: true })`dpkg-deb -f ${file} Package Version Architecture`;
    if (r.exitCode !== 0)
      throw new TaskError(`${file} is not a readable .deb: ${r.stderr.trim()}`, { exitCode: ExitCode.integrity });
    const field = (k: string) => new RegExp(`^${k}: (.+)$`, 'm').exec(r.stdout)?.[1]?.trim() ?? '';
    out.push({ file, package: field('Package'), version: field('Version'), architecture: field('Architecture') });
  }
  return out;
}

async function versionLess(a: string, b: string): Promise<boolean> {
  return (await sh({ nothrow: true })`dpkg --compare-versions ${a} lt ${b}`).exitCode === 0;
}

/**
 * The .debs worth installing: packages not installed, or installed at an older version. Never a
 * downgrade (the base image may be newer than the mirror for some libraries).
 */
export async function selectDebs(debs: readonly DebInfo[], installed: ReadonlyMap<string, string>): Promise<DebInfo[]> {
  const out: DebInfo[] = [];
  for (const d of debs) {
    const have = installed.get(d.package);
    if (have === undefined || (await versionLess(have, d.version))) out.push(d);
  }
  return out;
}

/**
 * Installs `packages` (with their dependencies) from `<mirrorDir>/apt/*.deb` without any network:
 * `apt-get install --no-download` with no sources configured, so apt can use only what is installed and
 * the given .debs; a dependency the mirror lacks fails the install naming it. Already-installed requested
 * packages are left alone (no-op when nothing is missing).
 */
export async function aptFromMirror(
  mirrorDir: string,
  packages: readonly string[],
  options: AptFromMirrorOptions = {},
): Promise<AptFromMirrorResult> {
  const installed = options.installed ?? (await installedPackages());
  const missing = packages.filter((p) => !installed.has(p));
  if (missing.length === 0) {
    options.log?.info(`apt packages already installed: ${packages.join(' ')}`);
    return { missing, debs: [], output: '' };
  }
  const dir = path.join(mirrorDir, APT_MIRROR_SUBDIR);
  const available = await readDebs(dir);
  const lacking = missing.filter((p) => !available.some((d) => d.package === p));
  if (lacking.length > 0) {
    throw new TaskError(
      `the mirror's ${dir} has no .deb for: ${lacking.join(' ')} (${available.length} .deb files there)`,
      {
        exitCode: ExitCode.environment,
        hint:
          'fill the mirror on a connected machine with the `mirror` command ' +
          '(it downloads the packages and their dependencies)',
      },
    );
  }
  const debs = (await selectDebs(available, installed)).map((d) => d.file);
  const args = [
    'install',
    '-y',
    '-q',
    '--no-install-recommends',
    '--no-download',
    // no sources: apt sees the installed packages and these files only
    '-o',
    'Dir::Etc::SourceList=/dev/null',
    '-o',
    'Dir::Etc::SourceParts=/dev/null',
    '-o',
    'Dir::State::Lists=/nonexistent-slm-lists',
    ...(options.simulate ? ['-s'] : []),
    ...debs,
  ];
  const what = `apt-get install (from ${dir}): ${missing.join(' ')} + ${debs.length} .deb files`;
  const run = async () => {
    const r = await sh({ nothrow: true, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })`apt-get ${args}`;
    if (r.exitCode !== 0) {
      throw new TaskError(
        `${what} failed (exit ${r.exitCode}):\n${(r.stdout + r.stderr).trim().split('\n').slice(-12).join('\n')}`,
        {
          exitCode: ExitCode.environment,
          hint: 'a dependency is missing from the mirror: refill it with the `mirror` command for this release',
        },
      );
    }
    return r.stdout;
  };
  const output = options.log ? await options.log.phase(what, run) : await run();
  return { missing, debs, output };
}
