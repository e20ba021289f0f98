/**
 * The production base image: Ubuntu 24.04's cloud image from the dated release directory pinned in
 * artifacts.lock.json (`baseImage.production`). Its sha256 comes from that release's SHA256SUMS, is
 * recorded in the lock the first time and checked every time after (a release directory never changes:
 * a different value means the download or the lock is wrong).
 */
import path from 'node:path';
import { checksumFor } from '@slm-copilot/localai-install';
import { readLock } from '@slm-copilot/model-fetch';
import { ExitCode, TaskError, writeFileAtomic, type Logger } from '@slm-copilot/task-kit';
import { fetchText } from './mirror-fetch.js';

export interface BaseImagePin {
  release: string;
  url: string;
  checksumSource: string;
  sha256: string | null;
  provenance?: string;
}

/** The pin of the production base image in the lock at `lockPath`; refused by name when missing or malformed. */
export async function readBaseImagePin(lockPath: string): Promise<BaseImagePin> {
  const lock = await readLock(lockPath);
  const pin = (lock.baseImage as Record<string, BaseImagePin> | undefined)?.production;
  const ok =
    pin !== undefined &&
    /^release-20\d{6}$/.test(pin.release) &&
    pin.url.includes(`/${pin.release}/`) &&
    pin.checksumSource.includes(`/${pin.release}/`) &&
    (pin.sha256 === null || /^[0-9a-f]{64}$/.test(pin.sha256));
  if (!ok) {
    throw new TaskError(`${lockPath}: baseImage.production is missing or not a dated Ubuntu release pin`, {
      exitCode: ExitCode.invalidConfig,
      hint:
        'set release (release-YYYYMMDD), url and checksumSource of one ' +
        'cloud-images.ubuntu.com/releases/noble directory',
    });
  }
  return pin;
}

/**
 * Resolves the image's sha256 from the release's SHA256SUMS, records it in the lock when the lock has
 * none, and refuses a value that differs from the recorded one. Returns Packer's `iso_checksum`.
 */
export async function resolveBaseImageChecksum(
  lockPath: string,
  log: Logger,
): Promise<{ url: string; checksum: string; recorded: boolean }> {
  const pin = await readBaseImagePin(lockPath);
  const file = decodeURIComponent(path.posix.basename(new URL(pin.url).pathname));
  const sums = await fetchText(pin.checksumSource, `the SHA256SUMS of Ubuntu noble ${pin.release}`);
  const sha = checksumFor(sums, file);
  if (!sha) throw new TaskError(`${pin.checksumSource} lists no ${file}`, { exitCode: ExitCode.integrity });
  if (pin.sha256 !== null && pin.sha256 !== sha) {
    throw new TaskError(`${pin.checksumSource} says ${file} has sha256 ${sha}, ${lockPath} recorded ${pin.sha256}`, {
      exitCode: ExitCode.integrity,
      hint: 'a dated release never changes: check the proxy/mirror in between before editing the lock',
    });
  }
  let recorded = false;
  if (pin.sha256 === null) {
    const lock = await readLock(lockPath);
    (lock.baseImage as Record<string, BaseImagePin>).production = { ...pin, sha256: sha };
    await writeFileAtomic(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
    recorded = true;
    log.info(`recorded the sha256 of ${file} (${pin.release}) in ${lockPath}: ${sha}`);
  }
  return { url: pin.url, checksum: `sha256:${sha}`, recorded };
}
