// Pinned agent installs from the npm registry, cached under $SLM_COPILOT_CACHE/agents/<name>-<version>/.
// One install per entry (a kernel lock), filled in a temp directory beside it and renamed into place, so
// no half-installed entry is ever seen; a later call reads the entry's manifest and returns at once.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cacheRoot, exists, formatDuration, withLock } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { AGENT_PINS, type AgentName } from './pins.js';

/** A package pinned to a registry version and tarball integrity (an agent's pin, or a test's small package). */
export interface PackagePin {
  /** The cache entry's name (`<name>-<version>`). */
  name: string;
  package: string;
  version: string;
  integrity: string;
  /** The command it installs under node_modules/.bin. */
  bin: string;
}

/** What an install recorded (agent.json in the cache entry). */
export interface InstalledAgent {
  name: string;
  package: string;
  /** The version the lock file says was installed (equal to the pin, or the install fails). */
  version: string;
  /** The lock file's integrity for the package's tarball (equal to the pin's). */
  integrity: string;
  /** The cache entry. */
  dir: string;
  /** Absolute path of the agent's command. */
  bin: string;
  /** How long `npm install` took when the entry was made (ms). */
  installMs: number;
  /** True when this call found the entry already installed. */
  cached: boolean;
}

/** The bound of one `npm install` (an agent's cold install takes about a minute here). */
export const NPM_INSTALL_BOUND_MS = 10 * 60_000;

const MANIFEST = 'agent.json';

export function agentDir(pin: PackagePin, root = cacheRoot()): string {
  return path.join(root, 'agents', `${pin.name}-${pin.version}`);
}

/** The package's entry in an npm v3 lock file. */
interface LockEntry {
  version?: string;
  integrity?: string;
}

/** Reads the installed version and integrity of `pin.package` from `dir`'s package-lock.json. */
export async function lockedPackage(dir: string, pkg: string): Promise<LockEntry> {
  const lock = JSON.parse(await readFile(path.join(dir, 'package-lock.json'), 'utf8')) as {
    packages?: Record<string, LockEntry>;
  };
  return lock.packages?.[`node_modules/${pkg}`] ?? {};
}

/** npm with its update check off and nothing but the registry configured by the user. */
function npmEnv(): NodeJS.ProcessEnv {
  return { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' };
}

/** The last lines of npm's output (its `http` log level names every fetch that failed, and why). */
const tail = (text: string, n = 20) => text.trim().split('\n').slice(-n).join('\n');

/**
 * `npm install` run IN the entry (cwd), never with `--prefix`: `--prefix` also moves npm's global config
 * to `<prefix>/etc/npmrc`, so the machine's own (e.g. a `cafile` for an intercepting registry proxy) was
 * not read, and every fetch was retried for ~70 s each (the hang under turbo, whose strict environment also
 * drops NODE_EXTRA_CA_CERTS). Bounded: the install is ended at `timeoutMs` with an error that says so.
 */
async function npmInstall(dir: string, spec: string, timeoutMs: number): Promise<void> {
  const args = ['install', '--no-audit', '--no-fund', '--save-exact', '--loglevel=http', spec];
  const r = await $({ cwd: dir, quiet: true, nothrow: true, env: npmEnv(), timeout: timeoutMs })`npm ${args}`;
  if (r.exitCode === 0) return;
  const how =
    r.exitCode === null ? `did not finish within ${formatDuration(timeoutMs)} (ended)` : `failed (exit ${r.exitCode})`;
  throw new Error(`npm install ${spec} ${how}; its last lines:\n${tail(r.stderr) || '(no output)'}`);
}

async function install(pin: PackagePin, dir: string, timeoutMs: number): Promise<number> {
  const tmp = `${dir}.tmp-${process.pid}-${Date.now().toString(36)}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    // Our own package.json: npm refuses to install `cline` into a project that is itself named `cline`.
    await writeFile(
      path.join(tmp, 'package.json'),
      JSON.stringify({ name: `slm-copilot-agent-${pin.name}`, version: '0.0.0', private: true }, null, 2) + '\n',
    );
    const started = performance.now();
    await npmInstall(tmp, `${pin.package}@${pin.version}`, timeoutMs);
    const installMs = Math.round(performance.now() - started);
    const locked = await lockedPackage(tmp, pin.package);
    if (locked.version !== pin.version || locked.integrity !== pin.integrity) {
      throw new Error(
        `npm installed ${pin.package} ${locked.version ?? '(none)'} with integrity ${locked.integrity ?? '(none)'}; ` +
          `the pin is ${pin.version} with ${pin.integrity}`,
      );
    }
    const manifest = { name: pin.name, package: pin.package, version: locked.version, integrity: locked.integrity };
    await writeFile(path.join(tmp, MANIFEST), JSON.stringify({ ...manifest, installMs }, null, 2) + '\n');
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    return installMs;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

async function readInstalled(pin: PackagePin, dir: string, cached: boolean): Promise<InstalledAgent> {
  const m = JSON.parse(await readFile(path.join(dir, MANIFEST), 'utf8')) as Omit<InstalledAgent, 'dir' | 'bin'>;
  return { ...m, name: pin.name, dir, bin: path.join(dir, 'node_modules', '.bin', pin.bin), cached };
}

/**
 * Installs the pinned version of `name` from the npm registry into the cache (once) and returns where
 * its command is. `log` gets one line with the install's duration when one was needed.
 */
export async function ensureAgent(name: AgentName, opts: EnsureOptions = {}): Promise<InstalledAgent> {
  return ensurePinned(AGENT_PINS[name], opts);
}

export interface EnsureOptions {
  /** The cache root (default: task-kit's cacheRoot()). */
  root?: string;
  log?: (line: string) => void;
  /** The bound of `npm install` (default NPM_INSTALL_BOUND_MS). */
  timeoutMs?: number;
}

/** ensureAgent for any pin (tests use a small package, and a pin whose integrity is wrong). */
export async function ensurePinned(pin: PackagePin, opts: EnsureOptions = {}): Promise<InstalledAgent> {
  const dir = agentDir(pin, opts.root);
  if (await exists(path.join(dir, MANIFEST))) return readInstalled(pin, dir, true);
  const lock = path.join(opts.root ?? cacheRoot(), 'locks', `agent-${pin.name}-${pin.version}.lock`);
  return withLock(
    lock,
    async () => {
      // Another process may have installed it while this one waited for the lock.
      if (await exists(path.join(dir, MANIFEST))) return readInstalled(pin, dir, true);
      const ms = await install(pin, dir, opts.timeoutMs ?? NPM_INSTALL_BOUND_MS);
      opts.log?.(`installed ${pin.package}@${pin.version} in ${formatDuration(ms)} → ${dir}`);
      return readInstalled(pin, dir, false);
    },
    { timeoutMs: 15 * 60_000, what: `install of ${pin.package}@${pin.version}` },
  );
}
