// `packer build`: the child process (its own process group), its phases as its output shows them, and
// a timeout per phase and overall.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  exists,
  ExitCode,
  formatDuration,
  reapOnExit,
  TaskError,
  UsageError,
  type Logger,
} from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { ensureHostTools, TOOLS } from './host-tools.js';
import {
  PACKER_DIR,
  packerEnv,
  packerVersion,
  stageTemplate,
  supportsRequiredPlugins,
  varArgs,
  varFileArgs,
  type PackerVars,
} from './packer.js';
import { defaultLogger, fileSize, tail } from './util.js';

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
  /** The host cache root for Packer's downloads (default cacheRoot()); see packerEnv. */
  cacheDir?: string;
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
 * Follows Packer's output line by line: logs each phase with its duration, and calls `stop` once when a
 * phase or the whole build runs past its timeout.
 */
class PhaseClock {
  readonly phases: Array<{ name: string; ms: number }> = [];
  private index = 0;
  private phaseStarted = performance.now();
  private readonly watchdog: NodeJS.Timeout;

  /** `started`: when runPacker began (the overall timeout counts from there). */
  constructor(
    private readonly log: Logger,
    private readonly options: Pick<RunPackerOptions, 'timeoutMs' | 'phaseTimeoutsMs'>,
    private readonly started: number,
    stop: (why: string) => void,
  ) {
    const overall = options.timeoutMs ?? 3 * 60 * 60_000;
    this.watchdog = setInterval(() => {
      const limit = this.limit();
      if (performance.now() - this.started > overall) stop(`packer build timed out after ${formatDuration(overall)}`);
      else if (performance.now() - this.phaseStarted > limit)
        stop(`packer phase "${PACKER_PHASES[this.index]!.name}" timed out after ${formatDuration(limit)}`);
    }, 1000);
    this.watchdog.unref();
    log.info(`packer: ${PACKER_PHASES[0].name}…`);
  }

  private limit(): number {
    const p = PACKER_PHASES[this.index]!;
    return this.options.phaseTimeoutsMs?.[p.name] ?? p.timeoutMs;
  }

  /** Ends the current phase (logged with its duration). */
  endPhase(): void {
    const ms = performance.now() - this.phaseStarted;
    const name = PACKER_PHASES[this.index]!.name;
    this.phases.push({ name, ms });
    this.log.info(`packer: ${name}: done in ${formatDuration(ms)}`);
  }

  line(line: string): void {
    for (let i = this.index + 1; i < PACKER_PHASES.length; i++) {
      if (PACKER_PHASES[i]!.start.test(line)) {
        this.endPhase();
        this.index = i;
        this.phaseStarted = performance.now();
        this.log.info(`packer: ${PACKER_PHASES[i]!.name}…`);
        break;
      }
    }
  }

  halt(): void {
    clearInterval(this.watchdog);
  }
}

/** Signals Packer's whole process group (its QEMU included); a group already gone is fine. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

/** Runs `packer <args>` to its end: its output to the log file and, line by line, to the phase clock. */
async function runBuild(
  args: string[],
  work: string,
  logFile: string,
  log: Logger,
  options: Pick<RunPackerOptions, 'timeoutMs' | 'phaseTimeoutsMs' | 'cacheDir'>,
  started: number,
): Promise<{ code: number; output: string; timedOut: string | undefined; phases: RunPackerResult['phases'] }> {
  await mkdir(path.dirname(logFile), { recursive: true });
  const logStream = createWriteStream(logFile);
  const child = spawn('packer', args, {
    cwd: work,
    env: packerEnv(work, options.cacheDir),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const unregister = reapOnExit(() => killGroup(child, 'SIGKILL'));
  let timedOut: string | undefined;
  const clock = new PhaseClock(log, options, started, (why) => {
    if (timedOut) return;
    timedOut = why;
    log.error(`${why}: interrupting Packer`);
    killGroup(child, 'SIGINT');
    setTimeout(() => killGroup(child, 'SIGKILL'), 90_000).unref();
  });
  let output = '';
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
      clock.line(line);
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
  clock.halt();
  unregister();
  killGroup(child, 'SIGKILL'); // any QEMU left behind by a crashed Packer
  await new Promise<void>((resolve) => logStream.end(() => resolve()));
  if (code === 0) clock.endPhase();
  return { code, output, timedOut, phases: clock.phases };
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
        () =>
          $({ quiet: true, timeout: '10m', env: packerEnv(work, options.cacheDir), cwd: work })`packer init ${staged}`,
      );
    }
    const vars: PackerVars = {
      ...options.vars,
      output_directory: outputDir,
      ...(options.vmName ? { vm_name: options.vmName } : {}),
    };
    const varFiles = varFileArgs(options.varFiles, staged);
    const args = ['build', '-color=false', '-on-error=cleanup', ...varFiles, ...varArgs(vars), staged];
    log.info(`packer ${version} build → ${outputDir} (log: ${logFile})`);
    const { code, output, timedOut, phases } = await runBuild(args, work, logFile, log, options, started);
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
    const size = ((await fileSize(image)) / 1048576).toFixed(1);
    log.info(`packer build done in ${formatDuration(durationMs)}: ${image} (${size} MiB)`);
    return { outputDir, image, durationMs, phases, output, logFile };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
