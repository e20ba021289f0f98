import { randomBytes } from 'node:crypto';
import { lstat, open, readFile, readlink, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import {
  applyFileSet,
  changedPaths,
  createLogger,
  ensureDir,
  ExitCode,
  sh,
  TaskError,
  underRoot,
  type FileSet,
  type Logger,
} from '@slm-copilot/task-kit';

export interface InstallGatewayOptions {
  /** Root prefix the file paths are written under (default `/`). */
  root?: string;
  /** nginx binary (default `nginx`). */
  nginxBinary?: string;
  /** Command that checks the whole configuration nginx will load (default `<nginx> -t -q`). */
  testConfigCommand?: readonly string[];
  /** How to apply it: a command (default `<nginx> -s reload`), a function, or null for "nginx is not running yet". */
  reload?: readonly string[] | (() => Promise<void>) | null;
  /**
   * A file (e.g. Debian's `sites-enabled/default`, whose default_server clashes with ours) to remove;
   * restored on failure.
   */
  removeFile?: string | null;
  /** Directories nginx needs before it can load the config (log dir, ACME webroot); created 0755 when missing. */
  directories?: readonly string[];
  log?: Logger;
}

export interface InstallGatewayResult {
  /** Paths whose content or mode changed. */
  changed: string[];
  /** Whether `nginx -t` ran (it does whenever something changed). */
  tested: boolean;
  reloaded: boolean;
}

type Backup =
  | { kind: 'absent' }
  | { kind: 'file'; data: Buffer; mode: number; uid: number; gid: number }
  | { kind: 'symlink'; target: string };

async function backup(file: string): Promise<Backup> {
  try {
    const st = await lstat(file);
    if (st.isSymbolicLink()) return { kind: 'symlink', target: await readlink(file) };
    return { kind: 'file', data: await readFile(file), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw error;
  }
}

/** Puts a file back exactly as it was (content, mode, owner), atomically. */
async function restore(file: string, b: Backup): Promise<void> {
  if (b.kind === 'absent') {
    await rm(file, { force: true });
    return;
  }
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.restore`);
  if (b.kind === 'symlink') {
    await symlink(b.target, tmp);
  } else {
    const h = await open(tmp, 'wx', b.mode);
    try {
      await h.writeFile(b.data);
      await h.chmod(b.mode);
      await h.chown(b.uid, b.gid).catch(() => undefined);
      await h.sync();
    } finally {
      await h.close();
    }
  }
  await rename(tmp, file);
}

async function run(cmd: readonly string[]) {
  const [bin, ...args] = cmd;
  return sh({ nothrow: true })`${bin!} ${args}`;
}

/**
 * Installs a rendered gateway safely: backs up every file it replaces, writes the new ones,
 * runs `nginx -t` on the result and reloads only when it passes. When the test fails, every file
 * is put back as it was (the running nginx never loaded the bad one) and a TaskError carries
 * nginx's message. Nothing changed: no test, no reload.
 */
export async function installGateway(
  files: FileSet,
  options: InstallGatewayOptions = {},
): Promise<InstallGatewayResult> {
  const root = options.root ?? '/';
  const log = options.log ?? createLogger();
  const nginx = options.nginxBinary ?? 'nginx';
  const testCommand = options.testConfigCommand ?? [nginx, '-t', '-q'];
  const reload = options.reload === undefined ? [nginx, '-s', 'reload'] : options.reload;

  for (const d of options.directories ?? []) await ensureDir(underRoot(root, d), 0o755);

  const targets = files.map((f) => underRoot(root, f.path));
  const removed = options.removeFile ? underRoot(root, options.removeFile) : undefined;
  const backups = new Map<string, Backup>();
  for (const t of targets) backups.set(t, await backup(t));
  const removedBackup = removed ? await backup(removed) : undefined;

  const changed = changedPaths(await applyFileSet(root, files));
  const removing = removedBackup !== undefined && removedBackup.kind !== 'absent';
  if (changed.length === 0 && !removing) {
    log.info('nginx configuration unchanged');
    return { changed, tested: false, reloaded: false };
  }
  if (removing) await rm(removed!, { force: true });

  const test = await run(testCommand);
  if (test.exitCode !== 0) {
    const why = `${test.stderr}${test.stdout}`.trim();
    for (const p of changed) {
      const t = underRoot(root, p);
      await restore(t, backups.get(t)!);
    }
    if (removing) await restore(removed!, removedBackup!);
    const again = await run(testCommand);
    const state =
      again.exitCode === 0
        ? 'the previous configuration was restored and keeps serving'
        : 'the previous configuration was restored (it does not pass nginx -t either)';
    throw new TaskError(`nginx -t refused the new gateway configuration; ${state}:\n${why}`, {
      exitCode: ExitCode.invalidConfig,
      hint: 'this is a bug in the rendered configuration or a clash with another site in nginx.conf',
    });
  }
  log.info(`nginx -t passed for ${changed.length} changed file(s): ${changed.map((p) => path.basename(p)).join(', ')}`);

  if (reload === null) return { changed, tested: true, reloaded: false };
  if (typeof reload === 'function') await reload();
  else {
    const r = await run(reload);
    if (r.exitCode !== 0) {
      throw new TaskError(
        'nginx reload failed (the new configuration passed nginx -t and is in place): ' +
          `${r.stderr}${r.stdout}`.trim(),
        {
          exitCode: ExitCode.environment,
          hint: 'is nginx running? start it (systemctl start nginx) and it will load the new configuration',
        },
      );
    }
  }
  log.info('nginx reloaded');
  return { changed, tested: true, reloaded: true };
}
