import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, formatDuration, TaskError, UsageError, type Logger } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { ensureHostTools, TOOLS } from './host-tools.js';
import { makeMirrorDisk, type MirrorDisk } from './mirror-disk.js';
import { generateSshKey } from './ssh.js';
import { defaultLogger, exists, fileSize, sha256File, tail, vmCacheDir } from './util.js';

/** The repository's `packer/` directory (templates, profiles, scripts). */
export const PACKER_DIR = fileURLToPath(new URL('../../../../packer/', import.meta.url));
export const PLUGINS_FILE = 'plugins.pkr.hcl';
export const TEST_PROFILE = 'profiles/test.pkrvars.hcl';

export type PackerVars = Record<string, string | number | boolean | readonly string[]>;

/** `-var` arguments: strings raw, numbers/bools as text, lists as JSON (valid HCL). */
export function varArgs(vars: PackerVars): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(vars))
    out.push('-var', `${k}=${Array.isArray(v) ? JSON.stringify(v) : String(v)}`);
  return out;
}

export async function packerVersion(): Promise<string> {
  await ensureHostTools([TOOLS.packer]);
  const r = await $({ quiet: true, timeout: '30s', env: { ...process.env, CHECKPOINT_DISABLE: '1' } })`packer version`;
  const m = /(\d+\.\d+\.\d+)/.exec(r.stdout);
  if (!m?.[1]) throw new TaskError(`cannot read the Packer version from "${r.stdout.trim()}"`);
  return m[1];
}

/** Packer < 1.7 (Debian's 1.6.6) has the QEMU builder built in and rejects `required_plugins`. */
export function supportsRequiredPlugins(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 1 || (major === 1 && minor >= 7);
}

/**
 * Copies the template directory to `workDir/template`, setting plugins.pkr.hcl aside when the installed
 * Packer predates required_plugins. Returns the directory to run Packer on.
 */
export async function stageTemplate(template: string, workDir: string, version: string, log?: Logger): Promise<string> {
  const staged = path.join(workDir, 'template');
  await cp(template, staged, { recursive: true });
  if (!supportsRequiredPlugins(version) && (await exists(path.join(staged, PLUGINS_FILE)))) {
    await rm(path.join(staged, PLUGINS_FILE));
    log?.info(
      `Packer ${version} rejects required_plugins: ${PLUGINS_FILE} set aside (the built-in QEMU builder is used)`,
    );
  }
  return staged;
}

function packerEnv(workDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CHECKPOINT_DISABLE: '1', // no call home
    PACKER_NO_COLOR: '1',
    PACKER_CACHE_DIR: process.env.PACKER_CACHE_DIR || path.join(vmCacheDir(), 'packer_cache'),
    // Packer leaves /tmp/packer_to_cdrom* behind: keep its temp files in our work dir, removed after.
    TMPDIR: path.join(workDir, 'tmp'),
  };
}

export interface PackerValidateOptions {
  /** Template directory (default the repository's packer/). */
  template?: string;
  vars?: PackerVars;
  /** Var files, relative to the template directory or absolute. */
  varFiles?: string[];
  /**
   * No internet: Packer 1.6.6's validate downloads a `file:https://…` checksum list, so it is replaced by `none`
   * (with a warning). Every other setting is still checked.
   */
  offline?: boolean;
  log?: Logger;
  timeoutMs?: number;
}

/** Required path variables without a value get placeholders (a real key, empty seed files…) so validate can check everything else. */
async function placeholderVars(dir: string): Promise<PackerVars> {
  const seed = path.join(dir, 'seed');
  await mkdir(seed, { recursive: true });
  for (const f of ['user-data', 'meta-data', 'authorized_keys']) await writeFile(path.join(seed, f), '');
  const key = await generateSshKey(path.join(dir, 'key'), 'validate_ed25519', 'slm-vm-validate');
  for (const d of ['bundle', 'appliance']) await mkdir(path.join(dir, d), { recursive: true });
  await writeFile(path.join(dir, 'node-runtime.tar.xz'), '');
  return {
    output_directory: path.join(dir, 'output-never-created'), // validate fails if it exists
    seed_dir: seed,
    ssh_private_key_file: key.privateKeyFile,
    bundle_dir: path.join(dir, 'bundle'),
    appliance_dir: path.join(dir, 'appliance'),
    node_runtime_tarball: path.join(dir, 'node-runtime.tar.xz'),
  };
}

/** `packer validate` of a template (plugins file set aside under Packer 1.6). Throws with Packer's message on failure. */
export async function packerValidate(
  options: PackerValidateOptions = {},
): Promise<{ version: string; output: string; warnings: string[] }> {
  const log = defaultLogger(options.log, 'packer');
  const template = path.resolve(options.template ?? PACKER_DIR);
  const version = await packerVersion();
  const work = await mkdtemp(path.join(tmpdir(), 'slm-packer-validate-'));
  try {
    await mkdir(path.join(work, 'tmp'));
    const staged = await stageTemplate(template, work, version, log);
    const vars: PackerVars = { ...(await placeholderVars(path.join(work, 'placeholders'))), ...options.vars };
    const warnings: string[] = [];
    if (options.offline) {
      const checksum =
        typeof vars.source_image_checksum === 'string'
          ? vars.source_image_checksum
          : await defaultVar(staged, 'source_image_checksum');
      if (/^file:https?:/.test(checksum ?? '')) {
        warnings.push(
          `offline: the checksum list ${checksum!.slice(5)} was not fetched (source_image_checksum=none for this validate)`,
        );
        vars.source_image_checksum = 'none';
      }
    }
    for (const w of warnings) log.warn(w);
    const varFiles = (options.varFiles ?? []).flatMap((f) => [
      '-var-file',
      path.isAbsolute(f) ? f : path.join(staged, f),
    ]);
    const output = await log.phase(`packer validate ${path.basename(template)}/`, async () => {
      const r = await $({
        quiet: true,
        nothrow: true,
        timeout: options.timeoutMs ?? 120_000,
        env: packerEnv(work),
        cwd: work,
      })`packer validate ${varFiles} ${varArgs(vars)} ${staged}`;
      const text = `${r.stdout}${r.stderr}`;
      if (r.exitCode !== 0)
        throw new TaskError(`packer validate failed:\n${tail(text, 30)}`, { exitCode: ExitCode.invalidConfig });
      return text;
    });
    return { version, output, warnings };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The default of a variable, read from the template text (only for simple string defaults). */
async function defaultVar(dir: string, name: string): Promise<string | undefined> {
  for (const f of await readdir(dir)) {
    if (!f.endsWith('.pkr.hcl')) continue;
    const text = await readFile(path.join(dir, f), 'utf8');
    const m = new RegExp(`variable\\s+"${name}"\\s*\\{[^}]*?default\\s*=\\s*"([^"]*)"`, 's').exec(text);
    if (m) return m[1];
  }
  return undefined;
}

/** Phases of a Packer QEMU build, recognised from its output; each has its own timeout. */
export const PACKER_PHASES = [
  { name: 'prepare (checksum, disk, CD)', start: /^/, timeoutMs: 30 * 60_000 },
  { name: 'boot to SSH', start: /Starting VM|Waiting for SSH/, timeoutMs: 45 * 60_000 },
  { name: 'provision', start: /Connected to SSH/, timeoutMs: 90 * 60_000 },
  { name: 'shutdown', start: /Gracefully halting|Halting the virtual machine/, timeoutMs: 20 * 60_000 },
  { name: 'convert + compress', start: /Converting hard drive/, timeoutMs: 60 * 60_000 },
] as const;
export type PackerPhaseName = (typeof PACKER_PHASES)[number]['name'];

export interface RunPackerOptions {
  template?: string;
  vars: PackerVars;
  varFiles?: string[];
  /** Becomes var.output_directory; must not exist (Packer refuses). */
  outputDir: string;
  /** Becomes var.vm_name (default the template's). */
  vmName?: string;
  log?: Logger;
  /** Whole build (default 3 h); each phase also has its own (PACKER_PHASES, overridable). */
  timeoutMs?: number;
  phaseTimeoutsMs?: Partial<Record<PackerPhaseName, number>>;
  /** Full Packer output goes here too (default `<outputDir>.packer.log`). */
  logFile?: string;
}

export interface RunPackerResult {
  outputDir: string;
  image: string;
  durationMs: number;
  phases: Array<{ name: string; ms: number }>;
  /** Packer's whole output. */
  output: string;
  logFile: string;
}

/**
 * `packer build` with a hard timeout per phase and overall: on timeout Packer gets SIGINT (it stops its
 * QEMU and cleans up), then its whole process group SIGKILL. Output is streamed to a log file and
 * phases are logged with their durations.
 */
export async function runPacker(options: RunPackerOptions): Promise<RunPackerResult> {
  const log = defaultLogger(options.log, 'packer');
  const template = path.resolve(options.template ?? PACKER_DIR);
  const outputDir = path.resolve(options.outputDir);
  if (await exists(outputDir))
    throw new UsageError(
      `output directory ${outputDir} exists`,
      'Packer refuses an existing output directory: remove it or pick another',
    );
  const version = await packerVersion();
  await ensureHostTools([TOOLS.qemu, TOOLS.qemuImg, TOOLS.xorriso], log);
  const work = await mkdtemp(path.join(tmpdir(), 'slm-packer-'));
  const logFile = options.logFile ?? `${outputDir}.packer.log`;
  const started = performance.now();
  try {
    await mkdir(path.join(work, 'tmp'));
    const staged = await stageTemplate(template, work, version, log);
    if (supportsRequiredPlugins(version)) {
      await log.phase(
        'packer init',
        () => $({ quiet: true, timeout: '10m', env: packerEnv(work), cwd: work })`packer init ${staged}`,
      );
    }
    const vars: PackerVars = {
      ...options.vars,
      output_directory: outputDir,
      ...(options.vmName ? { vm_name: options.vmName } : {}),
    };
    const varFiles = (options.varFiles ?? []).flatMap((f) => [
      '-var-file',
      path.isAbsolute(f) ? f : path.join(staged, f),
    ]);
    const args = ['build', '-color=false', '-on-error=cleanup', ...varFiles, ...varArgs(vars), staged];
    await mkdir(path.dirname(logFile), { recursive: true });
    const logStream = createWriteStream(logFile);
    log.info(`packer ${version} build → ${outputDir} (log: ${logFile})`);

    const child = spawn('packer', args, {
      cwd: work,
      env: packerEnv(work),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        /* already gone */
      }
    };
    const onExit = () => killGroup('SIGKILL');
    process.once('exit', onExit);

    let output = '';
    const phases: Array<{ name: string; ms: number }> = [];
    let phaseIndex = 0;
    let phaseStarted = performance.now();
    const phaseLimit = (i: number) => {
      const p = PACKER_PHASES[i]!;
      return options.phaseTimeoutsMs?.[p.name] ?? p.timeoutMs;
    };
    const endPhase = () => {
      const ms = performance.now() - phaseStarted;
      const name = PACKER_PHASES[phaseIndex]!.name;
      phases.push({ name, ms });
      log.info(`packer: ${name}: done in ${formatDuration(ms)}`);
    };
    let timedOut: string | undefined;
    const stop = (why: string) => {
      if (timedOut) return;
      timedOut = why;
      log.error(`${why}: interrupting Packer`);
      killGroup('SIGINT');
      setTimeout(() => killGroup('SIGKILL'), 90_000).unref();
    };
    const overall = options.timeoutMs ?? 3 * 60 * 60_000;
    const watchdog = setInterval(() => {
      if (performance.now() - started > overall) stop(`packer build timed out after ${formatDuration(overall)}`);
      else if (performance.now() - phaseStarted > phaseLimit(phaseIndex))
        stop(
          `packer phase "${PACKER_PHASES[phaseIndex]!.name}" timed out after ${formatDuration(phaseLimit(phaseIndex))}`,
        );
    }, 1000);
    watchdog.unref();
    log.info(`packer: ${PACKER_PHASES[0].name}…`);

    let partial = '';
    const onData = (d: Buffer) => {
      const text = d.toString();
      output += text;
      logStream.write(text);
      partial += text;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        log.debug(`packer| ${line}`);
        for (let i = phaseIndex + 1; i < PACKER_PHASES.length; i++) {
          if (PACKER_PHASES[i]!.start.test(line)) {
            endPhase();
            phaseIndex = i;
            phaseStarted = performance.now();
            log.info(`packer: ${PACKER_PHASES[i]!.name}…`);
            break;
          }
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const code = await new Promise<number>((resolve) => {
      child.once('exit', (c, s) => resolve(c ?? (s ? 128 : 1)));
      child.once('error', (e) => {
        output += String(e);
        resolve(127);
      });
    });
    clearInterval(watchdog);
    process.off('exit', onExit);
    killGroup('SIGKILL'); // any QEMU left behind by a crashed Packer
    await new Promise<void>((resolve) => logStream.end(() => resolve()));
    if (code === 0) endPhase();
    const durationMs = performance.now() - started;
    if (timedOut) throw new TaskError(`${timedOut}\n${tail(output, 25)}`, { exitCode: ExitCode.failure });
    if (code !== 0)
      throw new TaskError(
        `packer build failed (exit ${code}) after ${formatDuration(durationMs)}:\n${tail(output, 30)}`,
        { exitCode: ExitCode.failure, hint: `full log: ${logFile}` },
      );
    const vmName =
      options.vmName ?? (typeof options.vars.vm_name === 'string' ? options.vars.vm_name : 'slm-copilot.qcow2');
    const image = path.join(outputDir, vmName);
    if (!(await exists(image))) throw new TaskError(`packer succeeded but ${image} is missing`);
    log.info(
      `packer build done in ${formatDuration(durationMs)}: ${image} (${((await fileSize(image)) / 1048576).toFixed(1)} MiB)`,
    );
    return { outputDir, image, durationMs, phases, output, logFile };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The cidata seed of one build: cloud-init NoCloud files (Ubuntu) + `authorized_keys` (the Debian test base's slm-build-access). */
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
  /** offline = production's template and CPU settings with the guest network restricted (everything from the mirror). */
  profile: 'production' | 'offline' | 'test';
  /** Test profile: the base qcow2 (ensureBaseImage().path). Production: default Ubuntu URL unless given. Offline: required (the mirror's cloud image). */
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
