import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { TaskError, ExitCode } from './errors.js';
import { fsyncDir } from './fs.js';
import { underRoot } from './root.js';

/** One file a renderer wants on disk. Paths are absolute as seen inside the appliance. */
export interface FileSpec {
  path: string;
  text: string;
  /** Octal file mode; 0o644 when omitted. */
  mode?: number;
  /** `user:group` names or numeric ids; left alone when omitted (tests run unprivileged roots). */
  owner?: string;
}
export type FileSet = readonly FileSpec[];
export type WriteResult = 'created' | 'updated' | 'unchanged';

/**
 * mkdir -p that gives every directory it creates exactly `mode`, whatever the umask (one-apps runs
 * its stages under umask 0077, which would leave directories services must read unreadable).
 */
export async function ensureDir(dir: string, mode = 0o755): Promise<void> {
  const missing: string[] = [];
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    try {
      await stat(d);
      break;
    } catch {
      missing.push(d);
      if (path.dirname(d) === d) break;
    }
  }
  for (const d of missing.reverse()) {
    await mkdir(d, { mode }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    await chmod(d, mode);
  }
}

async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function resolveOwner(owner: string): Promise<{ uid: number; gid: number }> {
  const [user, group] = owner.split(':');
  const lookup = async (db: string, name: string | undefined): Promise<number> => {
    if (name === undefined || name === '') return -1;
    if (/^\d+$/.test(name)) return Number(name);
    const text = await readFile(`/etc/${db}`, 'utf8');
    for (const line of text.split('\n')) {
      const fields = line.split(':');
      if (fields[0] === name && fields[2] !== undefined) return Number(fields[2]);
    }
    throw new TaskError(`no such ${db === 'passwd' ? 'user' : 'group'} "${name}" for file owner "${owner}"`);
  };
  return { uid: await lookup('passwd', user), gid: await lookup('group', group) };
}

/**
 * Writes a file atomically: a temp file in the same directory, fsync, chmod/chown, rename.
 * A reader never sees a half-written file, and an unchanged file is not touched at all
 * (so its mtime stays and `configure` can tell nothing changed).
 */
export async function writeFileAtomic(
  file: string,
  text: string | Buffer,
  options: { mode?: number; owner?: string } = {},
): Promise<WriteResult> {
  const mode = options.mode ?? 0o644;
  const data = typeof text === 'string' ? Buffer.from(text) : text;
  const dir = path.dirname(file);
  await ensureDir(dir);
  const before = await readIfExists(file);
  const ids = options.owner ? await resolveOwner(options.owner) : undefined;
  if (before !== undefined && before.equals(data)) {
    const st = await stat(file);
    const sameMode = (st.mode & 0o7777) === mode;
    const sameOwner = !ids || ((ids.uid < 0 || st.uid === ids.uid) && (ids.gid < 0 || st.gid === ids.gid));
    if (sameMode && sameOwner) return 'unchanged';
  }
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    // Create with the final mode so a secret is never briefly world-readable.
    const handle = await open(tmp, 'wx', mode);
    try {
      await handle.writeFile(data);
      await handle.chmod(mode);
      if (ids) await handle.chown(ids.uid, ids.gid);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (error) {
    await rm(tmp, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    throw new TaskError(`cannot write ${file}: ${(error as Error).message}`, {
      exitCode: ExitCode.environment,
      hint: code === 'ENOSPC' ? 'the disk is full' : code === 'EACCES' ? 'run as root or pass --root' : undefined,
      cause: error,
    });
  }
  await fsyncDir(dir);
  return before === undefined ? 'created' : 'updated';
}

export interface AppliedFile {
  path: string;
  result: WriteResult;
}

/**
 * The only writer of rendered configuration: writes every file of the set under `root`
 * and reports which ones changed, so the lifecycle restarts exactly those services.
 */
export async function applyFileSet(root: string, files: FileSet): Promise<AppliedFile[]> {
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.path)) throw new TaskError(`internal: file set names ${f.path} twice`);
    seen.add(f.path);
  }
  const applied: AppliedFile[] = [];
  for (const f of files) {
    const result = await writeFileAtomic(underRoot(root, f.path), f.text, { mode: f.mode, owner: f.owner });
    applied.push({ path: f.path, result });
  }
  return applied;
}

export function changedPaths(applied: readonly AppliedFile[]): string[] {
  return applied.filter((a) => a.result !== 'unchanged').map((a) => a.path);
}

/** Removes a file under root if present; returns whether it existed. */
export async function removeFile(root: string, appliancePath: string): Promise<boolean> {
  const file = underRoot(root, appliancePath);
  try {
    await lstat(file);
  } catch {
    return false;
  }
  await rm(file, { force: true });
  return true;
}
