// The file effects of a download: sizes, fsync, the pid lock beside the partial file, local copies.
import { constants as fsConstants } from 'node:fs';
import { copyFile, open, readFile, rm, stat } from 'node:fs/promises';
import { ExitCode, TaskError } from '@slm-copilot/task-kit';
import type { Failure } from './wget.js';

export async function fileSize(file: string): Promise<number | null> {
  try {
    return (await stat(file)).size;
  } catch {
    return null;
  }
}

export async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A pid file next to the download so two fetches never append to the same partial file. */
export async function acquireDownloadLock(lockFile: string, dest: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(lockFile, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY, 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return () => rm(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
        throw new TaskError(`another model-fetch (pid ${pid}) is already downloading ${dest}`, {
          exitCode: ExitCode.environment,
          hint: `wait for it, or remove ${lockFile} if that process is not model-fetch`,
        });
      }
      await rm(lockFile, { force: true }); // stale: its process is gone (killed, rebooted)
    }
  }
  throw new TaskError(`cannot take the download lock ${lockFile}`, { exitCode: ExitCode.environment });
}

/** A mirror directory on this machine: copy (the whole file; local copies are fast). */
export async function copyLocal(src: string, partial: string, size: number | undefined): Promise<Failure | null> {
  const srcSize = await fileSize(src);
  if (srcSize === null) return { kind: 'not-found', cause: 'no such file in the mirror directory' };
  if (size !== undefined && srcSize !== size) {
    return { kind: 'checksum', cause: `the mirror's copy has ${srcSize} bytes, expected ${size}` };
  }
  try {
    await copyFile(src, partial);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') return { kind: 'disk-full', cause: 'disk full (No space left on device)' };
    return { kind: 'io', cause: `copy failed: ${(error as Error).message}` };
  }
  return null;
}
