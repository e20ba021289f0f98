/**
 * SLOW (real VMs under TCG, minutes): the Debian 12 base image, and a VM that never answers is killed.
 * The Packer build and the boots of its result are the VM boot test's (packages/rig/e2e): one image build
 * per `npm test`, the real appliance image, whose pipeline checks (clean-up, build key gone, fresh
 * identity, CONTEXT CD, staged mirror) run there.
 * Cold cache: + ~2–7 min for the base image. Set SLM_VM_SKIP_SLOW=1 to skip when running vitest directly.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger, formatDuration } from '@slm-copilot/task-kit';
import { afterAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { ensureBaseImage, type BaseImage } from './base-image.js';
import { bootVm } from './qemu.js';
import { mib } from './util.js';

const skip = process.env.SLM_VM_SKIP_SLOW === '1';
const log = createLogger({ scope: 'vm-test' });
const MIN = 60_000;

/** Figures printed at the end (the brief's measurements). */
const figures: Record<string, string> = {};

describe.skipIf(skip)('[slow] VM pipeline: the Debian base image; a hung VM is killed', () => {
  let work: string;
  let base: BaseImage;

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
    log.info(`figures: ${JSON.stringify(figures, null, 1)}`);
  }, 5 * MIN);

  it(
    'builds (or reuses) the Debian 12 base image',
    async () => {
      work = await mkdtemp(path.join(tmpdir(), 'slm-vm-slow-'));
      base = await log.phase('base image', () => ensureBaseImage({ log }));
      const how = base.built ? `built in ${formatDuration(base.buildMs ?? 0)}` : 'cached';
      figures['base image'] = `${how}; ${mib(base.fileBytes)} file, ${mib(base.virtualBytes)} virtual`;
      const info = JSON.parse((await $({ quiet: true })`qemu-img info --output=json ${base.path}`).stdout);
      expect(info.format).toBe('qcow2');
      expect(base.fileBytes).toBeLessThan(400 * 1024 * 1024);
    },
    50 * MIN,
  );

  it(
    'a VM whose SSH never answers is killed at its timeout (no hung QEMU)',
    async () => {
      expect(base, 'base image step failed').toBeDefined();
      // No CONTEXT CD: the guest never authorizes our key, so SSH cannot succeed.
      const hung = await bootVm({
        image: base.path,
        log,
        workDir: await mkdtemp(path.join(work, 'hung-')),
        maxLifetimeMs: 10 * MIN,
      });
      try {
        await expect(hung.waitForSsh(8_000)).rejects.toThrow(/did not answer within 8\.0 s[\s\S]*serial console/);
        expect(hung.running).toBe(false);
        const pid = hung.pid!;
        expect(() => process.kill(pid, 0)).toThrow();
      } finally {
        await hung.dispose();
      }
    },
    5 * MIN,
  );
});
