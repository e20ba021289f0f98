import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { makeMirrorDisk, MIRROR_DISK_LABEL, mirrorDiskBytes, STAGED_MIRROR_DIR } from './mirror-disk.js';
import { PACKER_DIR, packerValidate, TEST_PROFILE } from './packer.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('mirror disk (the artifacts staged into the build VM)', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'slm-mirror-disk-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('is an in-VM path under the staging dir that the clean-up removes', () => {
    expect(STAGED_MIRROR_DIR).toBe('/var/tmp/slm-copilot-build/mirror');
  });

  it('sizes the image above the data it holds (ext2 metadata and slack included)', () => {
    const files = [{ size: 14_334_446_752 }, { size: 1 }, { size: 0 }];
    const bytes = mirrorDiskBytes(files);
    expect(bytes).toBeGreaterThan(14_334_446_752 * 1.02);
    expect(bytes).toBeLessThan(14_334_446_752 * 1.05);
    expect(bytes % (1024 * 1024)).toBe(0);
  });

  it('writes every file (sub-directories too) byte for byte, leaves excluded ones out, and is labelled', async () => {
    const mirror = path.join(work, 'mirror');
    await mkdir(path.join(mirror, 'apt'), { recursive: true });
    const model = randomBytes(3 * 1024 * 1024 + 17);
    const deb = randomBytes(5000);
    await writeFile(path.join(mirror, 'model.gguf'), model);
    await writeFile(path.join(mirror, 'apt', 'x_1_amd64.deb'), deb);
    await writeFile(path.join(mirror, 'base.img'), 'host only');
    const disk = await makeMirrorDisk({
      mirrorDir: mirror,
      out: path.join(work, 'mirror.img'),
      exclude: (f) => f === 'base.img',
    });
    expect(disk.files.sort()).toEqual(['apt/x_1_amd64.deb', 'model.gguf']);
    expect(disk.bytes).toBe(model.length + deb.length);
    expect((await $({ quiet: true })`blkid -o value -s LABEL ${disk.path}`).stdout.trim()).toBe(MIRROR_DISK_LABEL);
    expect((await $({ quiet: true })`blkid -o value -s TYPE ${disk.path}`).stdout.trim()).toBe('ext2');
    const out = path.join(work, 'out');
    await mkdir(out);
    await $({ quiet: true })`debugfs -R ${`rdump / ${out}`} ${disk.path}`;
    expect(sha(await readFile(path.join(out, 'model.gguf')))).toBe(sha(model));
    expect(sha(await readFile(path.join(out, 'apt', 'x_1_amd64.deb')))).toBe(sha(deb));
    await expect(readFile(path.join(out, 'base.img'))).rejects.toThrow(/ENOENT/);
  }, 60_000);

  it('refuses a missing mirror directory by name', async () => {
    await expect(makeMirrorDisk({ mirrorDir: path.join(work, 'nope'), out: path.join(work, 'x.img') })).rejects.toThrow(
      /nope does not exist/,
    );
  });

  it('attached read-only (no -drive), at a PCI slot after the main disk (else SeaBIOS boots it)', async () => {
    const text = await readFile(path.join(PACKER_DIR, 'slm-copilot.pkr.hcl'), 'utf8');
    expect(text).toMatch(/"-blockdev", "driver=raw,node-name=slmmirror,read-only=on,[^"]*file\.read-only=on/);
    expect(text).toContain('virtio-blk-pci,drive=slmmirror,serial=slm-mirror,addr=0x1e');
    expect(text).not.toMatch(/\["-drive"/);
    expect(text).toContain(`mount -o ro LABEL=${MIRROR_DISK_LABEL} \${var.staging_dir}/mirror`);
  });

  it('the template validates with a mirror disk attached (concat of qemuargs under Packer 1.6)', async () => {
    await packerValidate({
      varFiles: [TEST_PROFILE],
      vars: { source_image_url: '/dev/null', source_image_checksum: 'none', mirror_disk: path.join(work, 'a,b.img') },
    });
  }, 120_000);
});
