import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NGINX_CAPABILITIES } from '@slm-copilot/nginx-config';
import { afterEach, describe, expect, it } from 'vitest';
import { installServiceHardening } from './install.js';

const roots: string[] = [];
afterEach(async () => {
  for (const r of roots.splice(0)) await rm(r, { recursive: true, force: true });
});

describe('install: the nginx service drop-in', () => {
  it('lands under the root prefix, readable by systemd, even under one-apps umask 0077', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'slm-install-'));
    roots.push(root);
    const old = process.umask(0o077);
    try {
      const file = await installServiceHardening(root);
      expect(file).toBe(path.join(root, 'etc/systemd/system/nginx.service.d/slm-copilot-hardening.conf'));
      expect((await stat(file)).mode & 0o777).toBe(0o644);
      expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o755);
      const text = await readFile(file, 'utf8');
      expect(text).toContain(`CapabilityBoundingSet=${NGINX_CAPABILITIES.map((c) => c.cap).join(' ')}`);
      expect(text).toMatch(/^ReadWritePaths=\/var\/log\/nginx \/var\/lib\/nginx \/run$/m);
      // idempotent: a second install rewrites nothing
      const before = (await stat(file)).mtimeMs;
      await installServiceHardening(root);
      expect((await stat(file)).mtimeMs).toBe(before);
    } finally {
      process.umask(old);
    }
  });
});
