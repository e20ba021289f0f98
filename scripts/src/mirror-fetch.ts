import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExitCode, TaskError } from '@slm-copilot/task-kit';

/** A small text file (checksum lists, registry metadata); a 404 is a clear error naming the URL. */
export async function fetchText(url: string, what: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  } catch (error) {
    throw new TaskError(`cannot fetch ${what} from ${url}: ${(error as Error).cause ?? (error as Error).message}`, {
      exitCode: ExitCode.network,
    });
  }
  if (!res.ok)
    throw new TaskError(`cannot fetch ${what}: ${url} answered HTTP ${res.status}`, { exitCode: ExitCode.network });
  return res.text();
}

/** npm's `dist.integrity` (sha512 SRI) of one published version, from the registry's metadata. */
export async function npmIntegrity(registry: string, name: string, version: string): Promise<string> {
  const url = `${registry.replace(/\/+$/, '')}/${name}/${version}`;
  const meta = JSON.parse(await fetchText(url, `npm metadata of ${name}@${version}`)) as {
    dist?: { integrity?: string };
  };
  const integrity = meta.dist?.integrity;
  if (!integrity?.startsWith('sha512-'))
    throw new TaskError(`${url} has no sha512 dist.integrity`, { exitCode: ExitCode.integrity });
  return integrity;
}

/** The registry's tarball URL of an unscoped package (npm's standard layout). */
export const npmTarballUrl = (registry: string, name: string, version: string) =>
  `${registry.replace(/\/+$/, '')}/${name}/-/${name}-${version}.tgz`;

/**
 * Downloads `url` to `dest` through `<dest>.partial`, checking an SRI sha512 (npm) while writing; returns the
 * file's sha256 and size. Nothing that does not match is left at `dest`.
 */
export async function downloadSri(
  url: string,
  dest: string,
  integrity: string,
): Promise<{ sha256: string; size: number }> {
  const partial = `${dest}.partial`;
  const sha512 = createHash('sha512');
  const sha256 = createHash('sha256');
  let size = 0;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(30 * 60_000) });
    if (!res.ok || !res.body) throw new TaskError(`${url} answered HTTP ${res.status}`, { exitCode: ExitCode.network });
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => {
      sha512.update(chunk);
      sha256.update(chunk);
      size += chunk.length;
    });
    await pipeline(body, createWriteStream(partial));
  } catch (error) {
    await rm(partial, { force: true });
    if (error instanceof TaskError) throw error;
    throw new TaskError(`download of ${url} failed: ${(error as Error).message}`, { exitCode: ExitCode.network });
  }
  const got = `sha512-${sha512.digest('base64')}`;
  if (got !== integrity) {
    await rm(partial, { force: true });
    throw new TaskError(`${url} does not match its integrity ${integrity} (got ${got})`, {
      exitCode: ExitCode.integrity,
    });
  }
  await rename(partial, dest);
  return { sha256: sha256.digest('hex'), size };
}
