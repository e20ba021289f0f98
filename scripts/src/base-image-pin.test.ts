import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '@slm-copilot/task-kit';
import { startMirror, type Mirror } from '@slm-copilot/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBaseImagePin, resolveBaseImageChecksum } from './base-image-pin.js';
import { LOCK_FILE } from './lock-file.js';

const log = createLogger({ level: 'error' });
const SHA = 'ab'.repeat(32);
let work: string;
let upstream: Mirror; // a FAKE cloud-images.ubuntu.com on loopback (the real one is not reachable here)

async function lockWith(pin: Record<string, unknown>): Promise<string> {
  const file = path.join(work, `lock-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify({ artifacts: {}, baseImage: { production: pin } }));
  return file;
}

const pinAt = (base: string, sha256: string | null = null) => ({
  release: 'release-20260926',
  url: `${base}/release-20260926/ubuntu-24.04-server-cloudimg-amd64.img`,
  checksumSource: `${base}/release-20260926/SHA256SUMS`,
  sha256,
});

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'base-pin-'));
  const root = path.join(work, 'upstream');
  await import('node:fs/promises').then((fs) => fs.mkdir(path.join(root, 'release-20260926'), { recursive: true }));
  await writeFile(
    path.join(root, 'release-20260926/SHA256SUMS'),
    `${'cd'.repeat(32)} *ubuntu-24.04-server-cloudimg-arm64.img\n${SHA} *ubuntu-24.04-server-cloudimg-amd64.img\n`,
  );
  upstream = await startMirror({ root });
});

afterAll(async () => {
  await upstream?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('production base image pin', () => {
  it('the committed lock pins a dated release directory, never current', async () => {
    const copy = path.join(work, 'committed.json');
    await copyFile(LOCK_FILE, copy);
    const pin = await readBaseImagePin(copy);
    expect(pin.release).toMatch(/^release-20\d{6}$/);
    expect(pin.url).not.toMatch(/current/);
    expect(pin.url).toContain(`/releases/noble/${pin.release}/`);
    expect(pin.checksumSource).toBe(pin.url.replace(/[^/]+$/, 'SHA256SUMS'));
  });

  it('reads the sha256 from the release SHA256SUMS and records it once', async () => {
    const lock = await lockWith(pinAt(`${upstream.baseUrl}`));
    const first = await resolveBaseImageChecksum(lock, log);
    expect(first).toMatchObject({ checksum: `sha256:${SHA}`, recorded: true });
    expect(JSON.parse(await readFile(lock, 'utf8')).baseImage.production.sha256).toBe(SHA);
    const again = await resolveBaseImageChecksum(lock, log);
    expect(again.recorded).toBe(false);
  });

  it('refuses a SHA256SUMS that disagrees with the recorded value, naming both', async () => {
    const lock = await lockWith(pinAt(`${upstream.baseUrl}`, 'ef'.repeat(32)));
    await expect(resolveBaseImageChecksum(lock, log)).rejects.toThrow(
      new RegExp(`sha256 ${SHA}.*recorded ${'ef'.repeat(32)}`),
    );
  });

  it('refuses a pin to `current` (not a dated release)', async () => {
    const lock = await lockWith({ ...pinAt(upstream.baseUrl), release: 'current' });
    await expect(readBaseImagePin(lock)).rejects.toThrow(/baseImage\.production .* not a dated Ubuntu release pin/);
  });
});

describe('one pin', () => {
  it("packer's production defaults are the lock's pin (build-image passes it; they must not drift)", async () => {
    const copy = path.join(work, 'committed2.json');
    await copyFile(LOCK_FILE, copy);
    const pin = await readBaseImagePin(copy);
    const vars = await readFile(path.join(path.dirname(LOCK_FILE), 'packer/variables.pkr.hcl'), 'utf8');
    expect(vars).toContain(`default     = "${pin.url}"`);
    expect(vars).toContain(`default     = "file:${pin.checksumSource}"`);
  });
});
