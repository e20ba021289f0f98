import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { defaultRecipe, GUEST_DIR, recipeHash } from './base-image.js';

describe('base image recipe', () => {
  it('has a stable hash that changes with the recipe', async () => {
    const a = await recipeHash();
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(await recipeHash()).toBe(a);
    expect(await recipeHash({ ...defaultRecipe, packages: [...defaultRecipe.packages, 'jq'] })).not.toBe(a);
    expect(
      await recipeHash({ ...defaultRecipe, files: [...defaultRecipe.files, { path: '/etc/x', text: 'y' }] }),
    ).not.toBe(a);
  });

  it('has everything the appliance and the build need offline, and no cloud-init', () => {
    for (const p of [
      'linux-image-cloud-amd64',
      'openssh-server',
      'openssh-sftp-server',
      'nginx',
      'openssl',
      'certbot',
      'python3',
      'curl',
      'ifupdown',
      'isc-dhcp-client',
    ])
      expect(defaultRecipe.packages).toContain(p);
    expect(defaultRecipe.packages).not.toContain('cloud-init');
  });

  it('guest unit files pass systemd-analyze verify (apart from the not-installed scripts)', async () => {
    const r = await $({
      quiet: true,
      nothrow: true,
      cwd: GUEST_DIR,
    })`systemd-analyze verify ./slm-build-access.service ./slm-context-ssh.service`;
    const problems = `${r.stdout}${r.stderr}`
      .split('\n')
      .filter((l) => l.trim() && !/is not executable: No such file or directory/.test(l));
    expect(problems).toEqual([]);
  });

  it('guest shell scripts parse', async () => {
    for (const f of ['slm-build-access', 'slm-context-ssh', '../../../../packer/scripts/cleanup.sh']) {
      const r = await $({ quiet: true, nothrow: true })`sh -n ${path.join(GUEST_DIR, f)}`;
      expect(r.exitCode, `${f}: ${r.stderr}`).toBe(0);
    }
    expect(await readFile(path.join(GUEST_DIR, 'ssh-host-keys.conf'), 'utf8')).toMatch(
      /ExecStartPre=\/usr\/bin\/ssh-keygen -A/,
    );
  });
});
