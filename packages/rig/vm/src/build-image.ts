// One image build: a one-off SSH key and cidata seed, the profile's variables, the mirror disk, then runPacker.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sha256File, UsageError, type Logger } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { makeMirrorDisk, type MirrorDisk } from './mirror-disk.js';
import { TEST_PROFILE, type PackerVars } from './packer.js';
import { runPacker, type PackerPhaseName, type RunPackerResult } from './packer-run.js';
import { generateSshKey } from './ssh.js';
import { defaultLogger } from './util.js';

/**
 * The cidata seed of one build: cloud-init NoCloud files (Ubuntu) + `authorized_keys` (the Debian test
 * base's slm-build-access).
 */
export async function writeBuildSeed(
  dir: string,
  publicKey: string,
  instanceId = `slm-copilot-build-${Date.now().toString(36)}`,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'user-data'),
    [
      '#cloud-config',
      '# SLM-Copilot image build: lets Packer in as root with a key made for this one build.',
      '# packer/scripts/cleanup.sh removes the key, the cloud-init state and this seed before the image is saved.',
      'users: []',
      'disable_root: false',
      'ssh_pwauth: false',
      'ssh_authorized_keys:',
      `  - ${publicKey.trim()}`,
      'locale: C.UTF-8',
      'manage_etc_hosts: true',
      '',
    ].join('\n'),
  );
  await writeFile(path.join(dir, 'meta-data'), `instance-id: ${instanceId}\nlocal-hostname: slm-copilot-build\n`);
  await writeFile(path.join(dir, 'authorized_keys'), `${publicKey.trim()}\n`);
  return dir;
}

export interface BuildImageOptions {
  /**
   * offline = production's template and CPU settings with the guest network restricted (everything from
   * the mirror).
   */
  profile: 'production' | 'offline' | 'test';
  /**
   * Test profile: the base qcow2 (ensureBaseImage().path). Production: default Ubuntu URL unless given.
   * Offline: required (the mirror's cloud image).
   */
  sourceImage?: string;
  sourceChecksum?: string;
  /**
   * HOST directory of artifacts (`<mirrorDir>/<artifact-name>`), staged into the build VM as a read-only disk
   * mounted at STAGED_MIRROR_DIR (the install command also gets it as $SLM_MIRROR_DIR). See mirror-disk.ts.
   */
  mirrorDir?: string;
  /** Files of mirrorDir the build VM does not need (e.g. the base image): left off the mirror disk. */
  mirrorExclude?: (relativePath: string) => boolean;
  bundleDir: string;
  nodeRuntimeTarball: string;
  applianceDir: string;
  installCommand?: string;
  outputDir: string;
  vmName?: string;
  /** Extra/overriding variables. */
  vars?: PackerVars;
  template?: string;
  log?: Logger;
  timeoutMs?: number;
  phaseTimeoutsMs?: Partial<Record<PackerPhaseName, number>>;
  /** Keep the one-off build key in this (new) directory instead of deleting it (tests prove it no longer works). */
  buildKeyDir?: string;
  /** The host cache root for Packer's downloads (default cacheRoot()). */
  cacheDir?: string;
}

export interface BuildImageResult extends RunPackerResult {
  /** The staged mirror (its image is deleted after the build), when mirrorDir was given. */
  mirrorDisk: Omit<MirrorDisk, 'path'> | undefined;
  /** Fingerprint of the build VM's SSH host key (from the clean-up log), to prove VMs regenerate theirs. */
  buildHostKey: string | undefined;
  /** The one-off build key's public half (removed from the image). */
  buildPublicKey: string;
  /** Its private key file when `buildKeyDir` was given (else already deleted). */
  buildPrivateKeyFile: string | undefined;
}

/** The profile's source image and settings, added to `vars`; returns the var files the profile adds. */
async function profileVars(options: BuildImageOptions, vars: PackerVars, log: Logger): Promise<string[]> {
  const varFiles: string[] = [];
  if (options.profile === 'test') {
    if (!options.sourceImage) throw new UsageError('the test profile needs sourceImage (the base qcow2)');
    const image = path.resolve(options.sourceImage);
    varFiles.push(TEST_PROFILE);
    vars.source_image_url = image;
    vars.source_image_checksum =
      options.sourceChecksum ?? `sha256:${await log.phase('sha256 of the base image', () => sha256File(image))}`;
    const info = JSON.parse((await $({ quiet: true, timeout: '60s' })`qemu-img info --output=json ${image}`).stdout);
    vars.disk_size = `${Math.ceil(Number(info['virtual-size']) / 1048576)}M`;
  } else {
    if (options.profile === 'offline' && (!options.sourceImage || !options.sourceChecksum || !options.mirrorDir)) {
      throw new UsageError('the offline profile needs sourceImage + sourceChecksum (from the mirror) and mirrorDir');
    }
    if (options.sourceImage) vars.source_image_url = options.sourceImage;
    if (options.sourceChecksum) vars.source_image_checksum = options.sourceChecksum;
    if (options.profile === 'offline') vars.guest_network_restrict = 'on';
  }
  return varFiles;
}

/**
 * One image build: a one-off SSH key + cidata seed, the profile's variables, then runPacker.
 * The test profile takes the base image as a backing file (sha256 computed here) and runs offline under TCG.
 */
export async function buildImage(options: BuildImageOptions): Promise<BuildImageResult> {
  const log = defaultLogger(options.log, 'packer');
  const work = await mkdtemp(path.join(tmpdir(), 'slm-build-access-'));
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const key = await generateSshKey(options.buildKeyDir ?? path.join(work, 'key'));
    const seed = await writeBuildSeed(path.join(work, 'seed'), key.publicKey);
    const vars: PackerVars = {
      seed_dir: seed,
      ssh_private_key_file: key.privateKeyFile,
      bundle_dir: path.resolve(options.bundleDir),
      node_runtime_tarball: path.resolve(options.nodeRuntimeTarball),
      appliance_dir: path.resolve(options.applianceDir),
      serial_log: `${path.resolve(options.outputDir)}.serial.log`,
    };
    if (options.installCommand) vars.install_command = options.installCommand;
    const varFiles = await profileVars(options, vars, log);
    let mirrorDisk: MirrorDisk | undefined;
    if (options.mirrorDir) {
      // Beside the output (the user picked that file system for the image), not in /tmp: it holds the model.
      const out = `${path.resolve(options.outputDir)}.mirror-disk.img`;
      mirrorDisk = await log.phase('mirror disk', () =>
        makeMirrorDisk({ mirrorDir: options.mirrorDir!, out, exclude: options.mirrorExclude, log }),
      );
      cleanups.push(() => rm(out, { force: true }));
      vars.mirror_disk = mirrorDisk.path;
    }
    Object.assign(vars, options.vars);
    const result = await runPacker({
      template: options.template,
      vars,
      varFiles,
      outputDir: options.outputDir,
      vmName: options.vmName,
      log,
      timeoutMs: options.timeoutMs,
      phaseTimeoutsMs: options.phaseTimeoutsMs,
      cacheDir: options.cacheDir,
    });
    const buildHostKey = /build VM host key: \d+ (SHA256:\S+)/.exec(result.output)?.[1];
    const staged = mirrorDisk ? { files: mirrorDisk.files, bytes: mirrorDisk.bytes, ms: mirrorDisk.ms } : undefined;
    return {
      ...result,
      mirrorDisk: staged,
      buildHostKey,
      buildPublicKey: key.publicKey,
      buildPrivateKeyFile: options.buildKeyDir ? key.privateKeyFile : undefined,
    };
  } finally {
    for (const c of cleanups) await c();
    await rm(work, { recursive: true, force: true });
  }
}
