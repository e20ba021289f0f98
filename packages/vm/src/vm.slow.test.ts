/**
 * SLOW (real VMs under TCG, minutes): base image → TEST-profile `packer build` → boot of the result.
 * Cold cache: + ~2–7 min for the base image. Set SLM_VM_SKIP_SLOW=1 to skip when running vitest directly.
 * Every phase logs its duration and has its own timeout; every QEMU/Packer process is killed on failure.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger, formatDuration } from '@slm-copilot/task-kit';
import { afterAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';
import { ensureBaseImage, type BaseImage } from './base-image.js';
import { makeContextIso } from './context-iso.js';
import { STAGED_MIRROR_DIR } from './mirror-disk.js';
import { buildImage, type BuildImageResult } from './packer.js';
import { bootVm, type Vm } from './qemu.js';
import { ensureSshKey, type SshKey } from './ssh.js';
import { mib } from './util.js';

const skip = process.env.SLM_VM_SKIP_SLOW === '1';
const log = createLogger({ scope: 'vm-test' });
const MIN = 60_000;

/** Figures printed at the end (the brief's measurements). */
const figures: Record<string, string> = {};

describe.skipIf(skip)('[slow] VM pipeline: base image → packer build (test profile, TCG) → boot with a CONTEXT CD', () => {
  let work: string;
  let base: BaseImage;
  let build: BuildImageResult;
  let key: SshKey;
  let vm: Vm | undefined;
  const marker = `slm-marker-${Date.now().toString(36)}`;
  const contextValues = { ONEAPP_COPILOT_ENGINE: 'llama-server', ONEAPP_TRICKY: "it's $(not run) `x`" };

  afterAll(async () => {
    await vm?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
    log.info(`figures: ${JSON.stringify(figures, null, 1)}`);
  }, 5 * MIN);

  it('builds (or reuses) the Debian 12 base image', async () => {
    work = await mkdtemp(path.join(tmpdir(), 'slm-vm-slow-'));
    base = await log.phase('base image', () => ensureBaseImage({ log }));
    figures['base image'] = `${base.built ? `built in ${formatDuration(base.buildMs ?? 0)}` : 'cached'}; ${mib(base.fileBytes)} file, ${mib(base.virtualBytes)} virtual`;
    const info = JSON.parse((await $({ quiet: true })`qemu-img info --output=json ${base.path}`).stdout);
    expect(info.format).toBe('qcow2');
    expect(base.fileBytes).toBeLessThan(400 * 1024 * 1024);
  }, 50 * MIN);

  it('packer build (test profile): boots the base under TCG, uploads the bundle, runs the install command, cleans up, compresses', async () => {
    expect(base, 'base image step failed').toBeDefined();
    const bundle = path.join(work, 'bundle');
    const appliance = path.join(work, 'appliance');
    await mkdir(bundle);
    await mkdir(appliance);
    await writeFile(path.join(bundle, 'marker.txt'), `${marker}\n`);
    await writeFile(path.join(appliance, 'appliance.sh'), '# stand-in for the one-apps appliance script\n');
    const node = path.join(work, 'node-runtime.tar.xz');
    await $({ quiet: true })`tar -cJf ${node} -C ${appliance} appliance.sh`;
    // The artifact mirror, staged as a read-only disk: the install command checks every file's sha256 in the VM.
    const mirror = path.join(work, 'mirror');
    await mkdir(path.join(mirror, 'apt'), { recursive: true });
    const staged = { 'model.gguf': randomBytes(64 * 1024 * 1024), 'apt/pkg_1.0_amd64.deb': randomBytes(4096), 'llama-server.tar.xz': randomBytes(100_000) };
    for (const [name, bytes] of Object.entries(staged)) await writeFile(path.join(mirror, name), bytes);
    await writeFile(path.join(mirror, 'host-only.img'), 'the base image: not staged');
    const sums = Object.entries(staged).map(([name, bytes]) => `${createHash('sha256').update(bytes).digest('hex')}  ${name}`).join('\\n');
    const mirrorCheck =
      `test "$SLM_MIRROR_DIR" = ${STAGED_MIRROR_DIR} && cd "$SLM_MIRROR_DIR" && s=$(date +%s%N) && printf '${sums}\\n' | sha256sum -c --strict - && ` +
      'echo "slm-mirror-check: sha256 of all files in $(( ($(date +%s%N) - s) / 1000000 )) ms" && test ! -e host-only.img && ' +
      '! touch "$SLM_MIRROR_DIR/write-test" 2>/dev/null && echo "slm-mirror-check: read-only, ok"';
    build = await buildImage({
      profile: 'test',
      sourceImage: base.path,
      bundleDir: bundle,
      nodeRuntimeTarball: node,
      applianceDir: appliance,
      // Uses all three uploads; also leaves a password and shell history that the clean-up must remove.
      mirrorDir: mirror,
      mirrorExclude: (f) => f === 'host-only.img',
      installCommand:
        `${mirrorCheck} && ` +
        'install -D -m 0644 "$SLM_BUNDLE_DIR/marker.txt" /opt/slm-test/marker.txt && tar -tJf "$SLM_NODE_RUNTIME" && ' +
        'test -f "$SLM_APPLIANCE_DIR/appliance.sh" && echo root:build-password | chpasswd && echo "ls /" > /root/.bash_history',
      outputDir: path.join(work, 'output'),
      buildKeyDir: path.join(work, 'build-key'),
      log,
      timeoutMs: 60 * MIN,
      phaseTimeoutsMs: { 'boot to SSH': 20 * MIN, provision: 10 * MIN, shutdown: 5 * MIN, 'convert + compress': 10 * MIN },
    });
    figures['packer test build'] = `${formatDuration(build.durationMs)} (${build.phases.map((p) => `${p.name} ${formatDuration(p.ms)}`).join(', ')})`;
    expect(build.output).toContain('slm-cleanup: done');
    // the mirror was mounted read-only at the fixed in-VM path, every staged file matched, then it was unmounted
    expect(build.output).toMatch(/slm-mirror: mounted \/dev\/vd[a-z] +ext2 +ro[, ]/);
    for (const name of Object.keys(staged)) expect(build.output).toContain(`${name}: OK`);
    expect(build.output).toContain('slm-mirror-check: read-only, ok');
    expect(build.output).toContain('slm-cleanup: unmounted the mirror disk');
    expect(build.mirrorDisk?.files.sort()).toEqual(Object.keys(staged).sort());
    const inVm = /slm-mirror-check: sha256 of all files in (\d+) ms/.exec(build.output)?.[1];
    figures['mirror disk (64 MiB + 2 small files)'] =
      `made in ${formatDuration(build.mirrorDisk!.ms)} on the host; sha256 of all in the VM (TCG) ${inVm} ms`;
    expect(build.buildHostKey).toMatch(/^SHA256:/);
    const info = JSON.parse((await $({ quiet: true })`qemu-img info --output=json ${build.image}`).stdout);
    expect(info.format).toBe('qcow2');
    expect(info['backing-filename']).toBeUndefined(); // standalone: convert flattened the backing chain
    // Compressed: the file is much smaller than an uncompressed qcow2 of the same data would be.
    const measure = JSON.parse((await $({ quiet: true })`qemu-img measure --output=json -O qcow2 ${build.image}`).stdout);
    const fileBytes = Number(info['actual-size']);
    figures['packer output image'] = `${mib(fileBytes)} file (uncompressed qcow2 would need ${mib(Number(measure.required))}), ${mib(Number(info['virtual-size']))} virtual`;
    expect(fileBytes).toBeLessThan(Number(measure.required) * 0.7);
  }, 65 * MIN);

  it('boots the built image with a CONTEXT CD: marker present, CD readable, build key gone, boot key works, new host keys', async () => {
    expect(build, 'packer build step failed').toBeDefined();
    key = await ensureSshKey();
    const iso = await makeContextIso({ values: contextValues, sshPublicKey: key.publicKey, out: path.join(work, 'context.iso') });
    vm = await bootVm({ image: build.image, cdrom: iso.path, serialLog: path.join(work, 'serial.log'), log, maxLifetimeMs: 40 * MIN });
    const ms = await log.phase('boot to SSH (built image)', () => vm!.waitForSsh(20 * MIN));
    figures['boot to SSH (TCG, built image, first boot)'] = formatDuration(ms);

    // QEMU listens on loopback only (the forwards of restrict=on user networking)
    const listening = (await $({ quiet: true })`ss -Hltnp`).stdout.split('\n').filter((l) => l.includes(`pid=${vm!.pid},`));
    expect(listening.length).toBeGreaterThan(0);
    for (const l of listening) expect(l).toMatch(/\s127\.0\.0\.1:\d+\s/);

    // the install command's marker, from the uploaded bundle; the staging area is gone
    expect((await vm.ssh('cat /opt/slm-test/marker.txt')).stdout.trim()).toBe(marker);
    expect((await vm.ssh('test -e /var/tmp/slm-copilot-build', { nothrow: true })).exitCode).not.toBe(0);

    // the CONTEXT CD is visible and context.sh is exactly what we wrote
    expect((await vm.ssh('blkid -L CONTEXT')).stdout.trim()).toBe('/dev/sr0');
    const onCd = await vm.ssh('mkdir -p /mnt/ctx && mount -o ro LABEL=CONTEXT /mnt/ctx && cat /mnt/ctx/context.sh; umount /mnt/ctx');
    expect(onCd.stdout).toBe(iso.contextSh);

    // build access removed: the build's key is not authorized and cannot log in; the boot-time (context) key can
    const authorized = (await vm.ssh('cat /root/.ssh/authorized_keys')).stdout;
    expect(authorized).toContain(key.publicKey);
    expect(authorized).not.toContain(build.buildPublicKey.split(' ')[1]);
    const withBuildKey = await vm.ssh('true', { nothrow: true, timeoutMs: 60_000, key: { privateKeyFile: build.buildPrivateKeyFile!, publicKey: build.buildPublicKey } });
    expect(withBuildKey.exitCode).toBe(255);
    expect(withBuildKey.stderr).toMatch(/Permission denied/);

    // no password, no history; fresh identity
    expect((await vm.ssh("getent shadow root | cut -d: -f2")).stdout.trim()).toBe('*');
    expect((await vm.ssh('test -e /root/.bash_history', { nothrow: true })).exitCode).not.toBe(0);
    const hostKey = (await vm.ssh('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')).stdout.split(' ')[1];
    expect(hostKey).toMatch(/^SHA256:/);
    expect(hostKey).not.toBe(build.buildHostKey);
    expect((await vm.ssh('cat /etc/machine-id')).stdout.trim()).toMatch(/^[0-9a-f]{32}$/);
  }, 30 * MIN);

  it('reboots (guest systemctl reboot → SSH again) and swaps the CD between boots', async () => {
    expect(vm?.running, 'boot step failed').toBe(true);
    const rebootMs = await vm!.reboot(20 * MIN);
    figures['reboot to SSH'] = formatDuration(rebootMs);
    const iso2 = await makeContextIso({ values: { ...contextValues, ONEAPP_SECOND: 'yes' }, sshPublicKey: key.publicKey, out: path.join(work, 'context2.iso') });
    await log.phase('restart with another CD', async () => {
      await vm!.restart({ cdrom: iso2.path });
      await vm!.waitForSsh(20 * MIN);
    });
    const onCd = await vm!.ssh('mkdir -p /mnt/ctx && mount -o ro LABEL=CONTEXT /mnt/ctx && cat /mnt/ctx/context.sh; umount /mnt/ctx');
    expect(onCd.stdout).toBe(iso2.contextSh);
    // the disk (overlay) persisted across the restart
    expect((await vm!.ssh('cat /opt/slm-test/marker.txt')).stdout.trim()).toBe(marker);
    await vm!.shutdown();
    expect(vm!.running).toBe(false);
  }, 45 * MIN);

  it('a VM whose SSH never answers is killed at its timeout (no hung QEMU)', async () => {
    expect(base, 'base image step failed').toBeDefined();
    // No CONTEXT CD: the guest never authorizes our key, so SSH cannot succeed.
    const hung = await bootVm({ image: base.path, log, workDir: await mkdtemp(path.join(work, 'hung-')), maxLifetimeMs: 10 * MIN });
    try {
      await expect(hung.waitForSsh(8_000)).rejects.toThrow(/did not answer within 8\.0 s[\s\S]*serial console/);
      expect(hung.running).toBe(false);
      const pid = hung.pid!;
      expect(() => process.kill(pid, 0)).toThrow();
    } finally {
      await hung.dispose();
    }
  }, 5 * MIN);
});
