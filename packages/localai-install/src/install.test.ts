/**
 * LocalAI's binary and backend cannot exist on these machines (no internet): the binary here is a
 * FAKE — a shell script named as such that records how it was called — served by the test bed's
 * real HTTP mirror together with a checksums file in the release's format. Everything else
 * (download, checksum verification, atomic install, backend command line) is the real code.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { appliancePaths } from '@slm-copilot/context-schema';
import { TaskError, createLogger } from '@slm-copilot/task-kit';
import { startMirror, type Mirror } from '@slm-copilot/testbed';
import { checksumFor, installLocalAi } from './install.js';
import { localAiRelease } from './versions.js';

const release = localAiRelease();
const quiet = createLogger({ quiet: true });

/** FAKE local-ai: logs its argv; `backends install … --backends-path D` creates D/<name>. */
const fakeLocalAi = (logFile: string) => `#!/bin/sh
# FAKE local-ai for tests (the real binary cannot be downloaded here)
echo "$*" >> ${logFile}
if [ "$1" = backends ] && [ "$2" = install ]; then
  name="$4"; shift 4
  while [ $# -gt 0 ]; do [ "$1" = --backends-path ] && mkdir -p "$2/$name"; shift; done
fi
`;

let mirror: Mirror | undefined;
afterEach(async () => {
  await mirror?.stop();
  mirror = undefined;
});

async function setup(opts: { wrongChecksum?: boolean } = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'localai-install-'));
  const mirrorDir = path.join(dir, 'mirror');
  await mkdir(mirrorDir);
  const logFile = path.join(dir, 'calls.log');
  const binary = fakeLocalAi(logFile);
  await writeFile(path.join(mirrorDir, release.binaryAsset), binary);
  const sha = createHash('sha256')
    .update(opts.wrongChecksum ? `${binary}tampered` : binary)
    .digest('hex');
  await writeFile(
    path.join(mirrorDir, release.checksumsAsset),
    `${'0'.repeat(64)}  local-ai-${release.version}-darwin-arm64\n${sha}  ${release.binaryAsset}\n`,
  );
  mirror = await startMirror({ root: mirrorDir });
  return { dir, logFile, paths: appliancePaths(path.join(dir, 'root')), sha };
}

describe('installLocalAi (with a FAKE local-ai binary)', () => {
  it('verifies the binary against the release checksums file, installs it 0755 and the pinned backend', async () => {
    const { logFile, paths, sha } = await setup();
    // the mirror answers first, so upstream is never contacted; the backend comes by its pinned OCI tag
    const result = await installLocalAi({ paths, mirrors: [mirror!.baseUrl], upstream: true, log: quiet });
    expect(result).toMatchObject({
      version: 'v4.9.0',
      sha256: sha,
      checksumSource: `${mirror!.baseUrl}/${release.checksumsAsset}`,
      backendInstalled: 'installed',
    });
    expect((await stat(paths.engine.localaiBinary)).mode & 0o777).toBe(0o755);
    // the pinned OCI tag, never the gallery's `latest`
    expect(result.backendRef).toBe('oci://quay.io/go-skynet/local-ai-backends:v4.9.0-cpu-llama-cpp');
    expect((await readFile(logFile, 'utf8')).trim()).toBe(
      `backends install oci://quay.io/go-skynet/local-ai-backends:v4.9.0-cpu-llama-cpp llama-cpp --backends-path ${paths.engine.localaiBackendsDir}`,
    );
  });

  it('is idempotent: a second run downloads nothing and installs no backend', async () => {
    const { logFile, paths } = await setup();
    await installLocalAi({ paths, mirrors: [mirror!.baseUrl], upstream: true, log: quiet });
    const before = mirror!.requests.filter((r) => r.path.endsWith(release.binaryAsset)).length;
    const again = await installLocalAi({ paths, mirrors: [mirror!.baseUrl], upstream: true, log: quiet });
    expect(again.backendInstalled).toBe('present');
    expect(mirror!.requests.filter((r) => r.path.endsWith(release.binaryAsset)).length).toBe(before);
    expect((await readFile(logFile, 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('refuses a binary whose checksum does not match, and installs nothing', async () => {
    const { paths } = await setup({ wrongChecksum: true });
    const error = await installLocalAi({ paths, mirrors: [mirror!.baseUrl], upstream: false, log: quiet }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TaskError);
    expect(String((error as Error).message)).toMatch(/sha-?256|checksum/i);
    expect(existsSync(paths.engine.localaiBinary)).toBe(false);
  });

  it('offline without a backend tarball in a mirror: a clear refusal', async () => {
    const { paths } = await setup();
    await expect(installLocalAi({ paths, mirrors: [mirror!.baseUrl], upstream: false, log: quiet })).rejects.toThrow(
      /offline install needs local-ai-backends-v4.9.0-cpu-llama-cpp.tar/,
    );
  });

  it('uses an OCI tarball from a directory mirror for offline builds', async () => {
    const { dir, logFile, paths } = await setup();
    const dirMirror = path.join(dir, 'mirror');
    await writeFile(path.join(dirMirror, `local-ai-backends-${release.version}-cpu-llama-cpp.tar`), 'FAKE OCI tarball');
    const result = await installLocalAi({ paths, mirrors: [dirMirror], upstream: false, log: quiet });
    expect(result.backendRef).toBe(
      `ocifile://${path.join(dirMirror, `local-ai-backends-${release.version}-cpu-llama-cpp.tar`)}`,
    );
    expect(await readFile(logFile, 'utf8')).toContain(`backends install ocifile://`);
  });

  it('checksumFor reads goreleaser checksum lines', () => {
    const sha = 'a'.repeat(64);
    expect(checksumFor(`${sha}  local-ai-v4.9.0-linux-amd64\n`, 'local-ai-v4.9.0-linux-amd64')).toBe(sha);
    expect(checksumFor(`${sha} *local-ai-v4.9.0-linux-amd64\n`, 'local-ai-v4.9.0-linux-amd64')).toBe(sha);
    expect(checksumFor(`${sha}  local-ai-v4.9.0-linux-amd64.sig\n`, 'local-ai-v4.9.0-linux-amd64')).toBeUndefined();
  });
});
