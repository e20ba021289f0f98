import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ExitCode, sh, TaskError, type Logger } from '@slm-copilot/task-kit';

/** Ubuntu's archive key as the Debian/Ubuntu package `ubuntu-keyring` installs it. */
export const UBUNTU_KEYRING = '/usr/share/keyrings/ubuntu-archive-keyring.gpg';

/** The apt sources of the production image (Ubuntu 24.04 noble; certbot is in universe). */
export function ubuntuNobleSources(
  archive = 'http://archive.ubuntu.com/ubuntu',
  security = 'http://security.ubuntu.com/ubuntu',
  keyring = UBUNTU_KEYRING,
): string[] {
  const opt = `[arch=amd64 signed-by=${keyring}]`;
  return [
    `deb ${opt} ${archive} noble main universe`,
    `deb ${opt} ${archive} noble-updates main universe`,
    `deb ${opt} ${security} noble-security main universe`,
  ];
}

export interface DownloadDebsOptions {
  packages: readonly string[];
  /** Directory receiving the .deb files (created). */
  dest: string;
  /** sources.list lines; every `signed-by` keyring must exist (tests use a `[trusted=yes]` fake). */
  sources: readonly string[];
  log?: Logger;
}

/**
 * Downloads `packages` and their whole dependency closure (as if nothing were installed: the image may
 * lack any of them) with apt itself, in a private apt root that has an empty dpkg status and only
 * `sources`: apt checks each .deb against the index signed by the keyring. Needs no root and leaves the
 * host's apt alone.
 */
export async function downloadDebs(options: DownloadDebsOptions): Promise<string[]> {
  for (const line of options.sources) {
    const keyring = /signed-by=([^\s\]]+)/.exec(line)?.[1];
    if (keyring && !existsSync(keyring)) {
      throw new TaskError(
        `the apt keyring ${keyring} is missing (needed to verify ${line.split(/\s+/).slice(-3).join(' ')})`,
        {
          exitCode: ExitCode.environment,
          hint: 'apt-get install ubuntu-keyring',
        },
      );
    }
  }
  const root = await mkdtemp(path.join(tmpdir(), 'slm-mirror-apt-'));
  try {
    for (const d of [
      'etc/apt/apt.conf.d',
      'etc/apt/preferences.d',
      'etc/apt/trusted.gpg.d',
      'var/lib/apt/lists/partial',
      'var/cache/apt/archives/partial',
      'var/lib/dpkg',
    ]) {
      await mkdir(path.join(root, d), { recursive: true });
    }
    await writeFile(path.join(root, 'etc/apt/sources.list'), `${options.sources.join('\n')}\n`);
    await writeFile(path.join(root, 'var/lib/dpkg/status'), '');
    await mkdir(options.dest, { recursive: true });
    const opts = [
      '-o',
      `Dir=${root}`,
      '-o',
      `Dir::State::status=${path.join(root, 'var/lib/dpkg/status')}`,
      '-o',
      `Dir::Cache::archives=${path.resolve(options.dest)}`,
      '-o',
      'APT::Architecture=amd64',
      '-o',
      'APT::Architectures::=amd64',
      '-o',
      'Acquire::Languages=none',
      '-o',
      'Debug::NoLocking=1',
      '-o',
      'Acquire::Retries=3',
      // downloads run as the calling user (no _apt sandbox needed for a private directory)
      '-o',
      'APT::Sandbox::User=root',
    ];
    const apt = async (what: string, args: string[]) => {
      const r = await sh({
        nothrow: true,
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' },
      })`apt-get ${opts} ${args}`;
      if (r.exitCode !== 0) {
        throw new TaskError(
          `apt-get ${what} failed (exit ${r.exitCode}):\n` +
            (r.stdout + r.stderr).trim().split('\n').slice(-10).join('\n'),
          { exitCode: ExitCode.network },
        );
      }
    };
    const run = async () => {
      await apt('update (private root)', ['update', '-q']);
      await apt(`install --download-only ${options.packages.join(' ')}`, [
        'install',
        '-y',
        '-q',
        '--download-only',
        '--no-install-recommends',
        ...options.packages,
      ]);
    };
    await (options.log ? options.log.phase(`apt: ${options.packages.join(' ')} + dependencies`, run) : run());
    await rm(path.join(options.dest, 'partial'), { recursive: true, force: true });
    await rm(path.join(options.dest, 'lock'), { force: true });
    return (await readdir(options.dest)).filter((n) => n.endsWith('.deb')).sort();
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
