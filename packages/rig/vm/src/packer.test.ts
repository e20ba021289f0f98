import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { buildImage } from './build-image.js';
import {
  PACKER_DIR,
  PLUGINS_FILE,
  packerValidate,
  packerVersion,
  supportsRequiredPlugins,
  TEST_PROFILE,
  varArgs,
} from './packer.js';

describe('packer helpers', () => {
  it('renders -var arguments (lists as JSON/HCL)', () => {
    expect(varArgs({ a: 'x y', b: 2, c: true, d: ['-F', 'qcow2'] })).toEqual([
      '-var',
      'a=x y',
      '-var',
      'b=2',
      '-var',
      'c=true',
      '-var',
      'd=["-F","qcow2"]',
    ]);
  });
  it('the offline profile refuses to start without the mirror (its base image, checksum and mirror dir)', async () => {
    const base = {
      bundleDir: '/nonexistent',
      nodeRuntimeTarball: '/nonexistent',
      applianceDir: '/nonexistent',
      outputDir: '/nonexistent/out',
    };
    await expect(
      buildImage({ ...base, profile: 'offline', sourceImage: '/m/noble.img', sourceChecksum: 'sha256:00' }),
    ).rejects.toThrow(/offline profile needs .*mirrorDir/);
    await expect(buildImage({ ...base, profile: 'offline', mirrorDir: '/m' })).rejects.toThrow(
      /offline profile needs sourceImage/,
    );
  });
  it('knows which Packer versions take required_plugins', () => {
    expect(supportsRequiredPlugins('1.6.6')).toBe(false);
    expect(supportsRequiredPlugins('1.7.0')).toBe(true);
    expect(supportsRequiredPlugins('1.11.2')).toBe(true);
  });
});

describe('packer validate (real Packer)', () => {
  it('the production template validates (offline: the remote checksum list is not fetched)', async () => {
    const r = await packerValidate({ offline: true });
    expect(r.warnings.join('\n')).toMatch(/cloud-images\.ubuntu\.com\/releases\/noble\/release-\d{8}\/SHA256SUMS/);
  }, 120_000);

  it('the test profile validates', async () => {
    await packerValidate({
      varFiles: [TEST_PROFILE],
      vars: { source_image_url: '/dev/null', source_image_checksum: 'none' },
    });
  }, 120_000);

  it('the production template keeps the settings the brief requires', async () => {
    const text = await readFile(path.join(PACKER_DIR, 'slm-copilot.pkr.hcl'), 'utf8');
    const vars = await readFile(path.join(PACKER_DIR, 'variables.pkr.hcl'), 'utf8');
    for (const s of [
      'disk_image       = true',
      'format             = "qcow2"',
      'disk_compression   = true',
      'cd_label = "cidata"',
      'vnc_bind_address = "127.0.0.1"',
      'hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22',
    ])
      expect(text).toContain(s);
    expect(text).not.toContain('cd_content');
    expect(text).not.toContain('required_plugins');
    expect(vars).toContain(
      'default     = "file:https://cloud-images.ubuntu.com/releases/noble/release-20260926/SHA256SUMS"',
    );
    expect(await readFile(path.join(PACKER_DIR, PLUGINS_FILE), 'utf8')).toMatch(
      /github\.com\/hashicorp\/qemu"[\s\S]*"~> 1"/,
    );
  });

  it('under Packer 1.6 the plugins file must be set aside (proof: validating the directory as is fails)', async () => {
    const version = await packerVersion();
    if (supportsRequiredPlugins(version)) return; // a newer Packer accepts it
    const r = await $({
      quiet: true,
      nothrow: true,
      env: { ...process.env, CHECKPOINT_DISABLE: '1' },
    })`packer validate -syntax-only ${PACKER_DIR}`;
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/required_plugins/);
  }, 60_000);

  it('a broken template fails validation (the check can fail)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'slm-packer-broken-'));
    await cp(PACKER_DIR, dir, { recursive: true });
    const file = path.join(dir, 'slm-copilot.pkr.hcl');
    await writeFile(
      file,
      (await readFile(file, 'utf8')).replace(
        'disk_image       = true',
        'disk_image       = true\n  no_such_setting = 1',
      ),
    );
    try {
      await expect(packerValidate({ template: dir, offline: true })).rejects.toThrow(
        /no_such_setting|not expected|Unsupported argument/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
