// What the engine build runs on the host: the tools it needs (apt-installed as root) and a logged child
// process whose output goes to the build log.
import type { Logger } from '@slm-copilot/task-kit';
import { $, type ProcessPromise } from 'zx';

/** Runs a zx process, streams its output to the build log, prints progress, throws with the tail on failure. */
export async function runLogged(
  log: Logger,
  logStream: NodeJS.WritableStream,
  verbose: boolean,
  p: ProcessPromise,
  progress = false,
): Promise<void> {
  let lastPct = -1;
  let lastReport = 0;
  const onData = (d: Buffer) => {
    logStream.write(d);
    if (verbose) process.stderr.write(d);
    if (progress) {
      const all = [...d.toString().matchAll(/^\[\s*(\d+)%\]/gm)];
      const pct = all.length ? Number(all[all.length - 1]![1]) : -1;
      const now = performance.now();
      if (pct > lastPct && now - lastReport > 30_000) {
        lastReport = now;
        lastPct = pct;
        log.info(`  ... ${pct}%`);
      }
    }
  };
  p.stdout.on('data', onData);
  p.stderr.on('data', onData);
  const out = await p;
  if (out.exitCode !== 0) {
    const tail = out.stdall.split('\n').slice(-40).join('\n');
    throw new Error(`command failed (exit ${out.exitCode}): ${p.cmd}\n--- output tail ---\n${tail}`);
  }
}

/** cmake, g++, make and git must be present; as root, missing ones are installed with apt-get. */
export async function ensureBuildTools(log: Logger): Promise<void> {
  const need: Record<string, string> = { cmake: 'cmake', 'g++': 'g++', make: 'make', git: 'git', flock: 'util-linux' };
  const missing: string[] = [];
  for (const [bin, pkg] of Object.entries(need)) {
    const r = await $({ quiet: true, nothrow: true })`command -v ${bin}`;
    if (r.exitCode !== 0) missing.push(pkg);
  }
  if (!missing.length) return;
  await aptInstall(missing, log);
}

/** Installs Debian packages when running as root; otherwise throws with the exact command to run. */
export async function aptInstall(pkgs: string[], log: Logger): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error(`missing Debian packages; run: sudo apt-get install -y ${pkgs.join(' ')}`);
  }
  await log.phase(`apt-get install -y ${pkgs.join(' ')}`, async () => {
    const r = await $({
      quiet: true,
      nothrow: true,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    })`apt-get install -y ${pkgs}`;
    if (r.exitCode !== 0)
      throw new Error(`apt-get install -y ${pkgs.join(' ')} failed (exit ${r.exitCode}):\n${r.stderr.slice(-2000)}`);
  });
}
