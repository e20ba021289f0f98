import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exists, ExitCode, TaskError, type Logger } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { ensureHostTools, TOOLS } from './host-tools.js';
import { generateSshKey } from './ssh.js';
import { defaultLogger, tail, vmCacheDir } from './util.js';

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

/**
 * The environment of every Packer run: no call home, no colour, its cache and temp files where we want them.
 * `cacheDir` is the host cache root (default cacheRoot()): Packer's downloads go to `<cacheDir>/vm/packer_cache`.
 */
export function packerEnv(workDir: string, cacheDir?: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CHECKPOINT_DISABLE: '1', // no call home
    PACKER_NO_COLOR: '1',
    PACKER_CACHE_DIR:
      process.env.PACKER_CACHE_DIR || path.join(cacheDir ? path.join(cacheDir, 'vm') : vmCacheDir(), 'packer_cache'),
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

/**
 * Required path variables without a value get placeholders (a real key, empty seed files…) so validate can
 * check everything else.
 */
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

/** `-var-file` arguments; relative files are read from the staged template directory. */
export function varFileArgs(varFiles: readonly string[] | undefined, staged: string): string[] {
  return (varFiles ?? []).flatMap((f) => ['-var-file', path.isAbsolute(f) ? f : path.join(staged, f)]);
}

/**
 * `packer validate` of a template (plugins file set aside under Packer 1.6). Throws with Packer's message on
 * failure.
 */
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
          `offline: the checksum list ${checksum!.slice(5)} was not fetched ` +
            '(source_image_checksum=none for this validate)',
        );
        vars.source_image_checksum = 'none';
      }
    }
    for (const w of warnings) log.warn(w);
    const varFiles = varFileArgs(options.varFiles, staged);
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
