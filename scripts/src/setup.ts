/**
 * The setup wizard new builders run first: `pnpm run setup`. It checks what the image build needs on
 * this machine, asks for the build settings (the contract of ./build-env.ts) and writes `.env`
 * atomically, or with `--yes` takes the flags and writes without asking.
 */
import { execFile, spawn } from 'node:child_process';
import { constants as fsConstants, existsSync } from 'node:fs';
import { access, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { styleText } from 'node:util';
import * as p from '@clack/prompts';
import { CATALOG, findModel } from '@slm-copilot/model-fetch';
import { commandExists, gatherHostFacts, runCommand, UsageError, writeFileAtomic, type WriteResult } from '@slm-copilot/task-kit';
import {
  BUILD_VARS,
  buildEnvError,
  buildVars,
  collectBuildEnv,
  CONTEXT_SIZE,
  DEFAULT_BUILD_SETTINGS,
  MIRROR_ONLY_PROFILES,
  REPO_ENV_FILE,
  renderEnvFile,
  resolveBuildPaths,
  settingText,
  type BuildFlags,
  type BuildProfile,
  type BuildSettingKey,
  type BuildSettings,
} from './build-env.js';

/** 128 + SIGINT: what a shell reports for Ctrl-C; the wizard exits with it whenever it is cancelled. */
export const EXIT_CANCELLED = 130;

const GB = 1e9;
const GiB = 1024 ** 3;
/** Build VM RAM in MiB per profile (packer/variables.pkr.hcl `memory`; profiles/test.pkrvars.hcl). */
const BUILD_VM_MIB: Record<BuildProfile, number> = { production: 8192, offline: 8192, test: 1024 };
/** Approximate extra GB beside the model: the OS, engines and Node in the image; base image and engine builds in the cache. */
const IMAGE_OVERHEAD_GB = 3;
const CACHE_OVERHEAD_GB = 2;

const useColor = Boolean(process.stdout.isTTY) && !('NO_COLOR' in process.env);
const paint = (format: Parameters<typeof styleText>[0], text: string) => (useColor ? styleText(format, text) : text);
const gb = (bytes: number) => `${(bytes / GB).toFixed(1)} GB`;
const gib = (bytes: number) => `${(bytes / GiB).toFixed(1)} GiB`;
const sudo = process.getuid?.() === 0 ? '' : 'sudo ';

// ---------------------------------------------------------------------------------------------
// Prerequisites

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

type Status = 'ok' | 'missing' | 'low' | 'info';
interface Check {
  name: string;
  status: Status;
  detail: string;
  fix?: string;
}

interface Kvm {
  /** /dev/kvm exists, is readable and writable, and a QEMU guest ran under KVM. */
  usable: boolean;
  check: Check;
}

const run = (file: string, args: string[], timeoutMs = 5000) =>
  new Promise<{ ok: boolean; out: string }>((resolve) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) =>
      resolve({ ok: !error, out: `${stdout}${stderr}`.trim() }),
    );
  });

const TOOLS = [
  { command: 'packer', apt: 'packer', version: ['version'] },
  { command: 'qemu-system-x86_64', apt: 'qemu-system-x86', version: ['--version'] },
  { command: 'qemu-img', apt: 'qemu-utils', version: ['--version'] },
  { command: 'xorriso', apt: 'xorriso', version: ['-version'] },
] as const;

async function checkTools(): Promise<Check[]> {
  return Promise.all(
    TOOLS.map(async (tool): Promise<Check> => {
      if (!(await commandExists(tool.command))) {
        return { name: tool.command, status: 'missing', detail: 'not installed', fix: `${sudo}apt-get install -y ${tool.apt}` };
      }
      const v = await run(tool.command, [...tool.version]);
      return { name: tool.command, status: 'ok', detail: v.out.split('\n')[0] ?? 'installed' };
    }),
  );
}

const NEEDS_OTHER_HOST = 'the production and offline profiles need another host (bare metal, or a VM with nested virtualization); the test profile runs here (TCG)';

/** Whether this machine can run KVM guests: /dev/kvm, its permissions, then a real QEMU guest for 2.5 s. */
async function checkKvm(qemuInstalled: boolean): Promise<Kvm> {
  const name = 'KVM';
  if (!existsSync('/dev/kvm')) {
    return {
      usable: false,
      check: { name, status: 'missing', detail: '/dev/kvm does not exist: this machine cannot run KVM guests', fix: NEEDS_OTHER_HOST },
    };
  }
  try {
    await access('/dev/kvm', fsConstants.R_OK | fsConstants.W_OK);
  } catch {
    return {
      usable: false,
      check: { name, status: 'missing', detail: '/dev/kvm exists but is not readable and writable by this user', fix: `${sudo}usermod -aG kvm "$USER", then log in again` },
    };
  }
  if (!qemuInstalled) {
    return { usable: false, check: { name, status: 'missing', detail: '/dev/kvm is readable and writable; cannot test a guest without qemu-system-x86_64', fix: `${sudo}apt-get install -y qemu-system-x86` } };
  }
  // A guest with no disk: SeaBIOS runs and waits for a boot device. Still running after 2.5 s = KVM runs guests.
  const probe = await new Promise<{ running: boolean; output: string }>((resolve) => {
    const child = spawn('qemu-system-x86_64', ['-accel', 'kvm', '-machine', 'pc', '-cpu', 'host', '-m', '32', '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'none', '-monitor', 'none', '-no-reboot'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({ running: true, output });
    }, 2500);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ running: false, output: error.message });
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve({ running: false, output });
    });
  });
  if (probe.running && !/error|fail/i.test(probe.output)) {
    return { usable: true, check: { name, status: 'ok', detail: '/dev/kvm is readable and writable, and a QEMU guest ran under KVM' } };
  }
  const reason = probe.output.trim().split('\n')[0] || 'QEMU exited at once';
  return {
    usable: false,
    check: { name, status: 'missing', detail: `/dev/kvm is present but cannot run guests (${reason})`, fix: NEEDS_OTHER_HOST },
  };
}

async function existingAncestor(dir: string): Promise<string> {
  let current = dir;
  for (;;) {
    try {
      if ((await stat(current)).isDirectory()) return current;
    } catch {
      // not there yet: look at the parent
    }
    const parent = path.dirname(current);
    if (parent === current) return current;
    current = parent;
  }
}

/** Free space where the image and the cache go, against the approximate needs of the chosen model. */
async function checkDisk(settings: BuildSettings, baseDir: string): Promise<Check[]> {
  const model = findModel(settings.model);
  const resolved = resolveBuildPaths(settings, baseDir);
  const imageGB = model.approxSizeGB + IMAGE_OVERHEAD_GB;
  // Packer writes the disk, then a compressed copy of it: about twice the image while it converts.
  const needs = [
    { what: 'output', dir: resolved.outputDir, bytes: 2 * imageGB * GB },
    { what: 'cache', dir: resolved.cache, bytes: (model.approxSizeGB + CACHE_OVERHEAD_GB) * GB },
  ];
  const fs = await Promise.all(
    needs.map(async (n) => {
      const at = await existingAncestor(n.dir);
      const [s, st] = await Promise.all([statfs(at), stat(at)]);
      return { ...n, free: s.bavail * s.bsize, dev: st.dev };
    }),
  );
  const approx = `approximate: ${model.id} is ~${model.approxSizeGB} GB (catalog), the image ~${imageGB.toFixed(1)} GB`;
  const sameFs = fs.length === 2 && fs[0]!.dev === fs[1]!.dev;
  const entries = sameFs ? [{ what: 'output + cache', dir: `${fs[0]!.dir}, ${fs[1]!.dir}`, bytes: fs[0]!.bytes + fs[1]!.bytes, free: fs[0]!.free }] : fs;
  return entries.map((e) => {
    const enough = e.free >= e.bytes;
    return {
      name: `disk (${e.what})`,
      status: enough ? 'ok' : 'low',
      detail: `${gb(e.free)} free in ${e.dir}; needs ≈ ${gb(e.bytes)} (${approx})`,
      ...(enough ? {} : { fix: `free ${gb(e.bytes - e.free)} there, or choose another ${e.what === 'cache' ? 'SLM_COPILOT_CACHE' : 'output directory'}` }),
    };
  });
}

async function checkRam(profile: BuildProfile): Promise<Check> {
  const facts = await gatherHostFacts();
  const vm = BUILD_VM_MIB[profile] * 1024 * 1024;
  const need = vm + GiB; // the build VM plus room for QEMU and the host
  const detail = `${gib(facts.memTotalBytes)} total, ${gib(facts.memAvailableBytes)} available; the ${profile} build VM uses ${gib(vm)} (+1 GiB for QEMU and the host)`;
  if (facts.memAvailableBytes >= need) return { name: 'RAM', status: 'ok', detail };
  if (facts.memTotalBytes >= need) return { name: 'RAM', status: 'low', detail, fix: `close programs to free ${gib(need - facts.memAvailableBytes)} before building` };
  return { name: 'RAM', status: 'missing', detail, fix: `build on a host with at least ${gib(need)} of RAM${profile === 'test' ? '' : ', or use the test profile (1 GiB VM)'}` };
}

function formatChecks(checks: readonly Check[]): string {
  const nameWidth = Math.max(...checks.map((c) => c.name.length));
  const indent = 8 + nameWidth + 2;
  // clack's note box takes about 6 columns of the terminal
  const width = Math.max(30, Math.min(process.stdout.columns || 80, 140) - 6 - indent);
  const label: Record<Status, string> = {
    ok: paint('green', 'ok     '),
    missing: paint('red', 'missing'),
    low: paint('yellow', 'low    '),
    info: paint('cyan', 'info   '),
  };
  return checks
    .map((c) => {
      const lines = [...wrap(c.detail, width), ...(c.fix ? wrap(`fix: ${c.fix}`, width) : [])];
      return lines.map((l, i) => (i === 0 ? `${label[c.status]} ${c.name.padEnd(nameWidth)}  ${l}` : `${' '.repeat(indent)}${l}`)).join('\n');
    })
    .join('\n');
}

/** A directory mirror should exist before the build; a URL is not contacted here. */
async function checkMirror(settings: BuildSettings, baseDir: string): Promise<Check[]> {
  const mirror = resolveBuildPaths(settings, baseDir).mirror;
  if (mirror === undefined) return [];
  if (/^https?:\/\//i.test(mirror)) return [{ name: 'mirror', status: 'info', detail: `${mirror} (a URL: not contacted by the wizard)` }];
  const isDir = await stat(mirror).then((st) => st.isDirectory(), () => false);
  return [
    isDir
      ? { name: 'mirror', status: 'ok', detail: `${mirror} is a directory` }
      : { name: 'mirror', status: 'missing', detail: `${mirror} does not exist (yet)`, fix: `create it and put the artifacts there as ${mirror}/<artifact-name>` },
  ];
}

/** KVM matters only for the profiles that use it. */
function kvmForProfile(kvm: Kvm, profile: BuildProfile): Check {
  if (kvm.usable || profile !== 'test') return kvm.check;
  return { ...kvm.check, status: 'info', detail: `${kvm.check.detail} (the test profile does not need it)`, fix: undefined };
}

// ---------------------------------------------------------------------------------------------
// The wizard

const OPTIONS = {
  yes: { type: 'boolean', short: 'y', default: false },
  profile: { type: 'string' },
  model: { type: 'string' },
  engine: { type: 'string' },
  'context-size': { type: 'string' },
  output: { type: 'string' },
  mirror: { type: 'string' },
  cache: { type: 'string' },
  'env-file': { type: 'string' },
} as const;

/** flag name → setting (the flags are BUILD_VARS' own). */
const FLAG_KEYS: Record<string, BuildSettingKey> = Object.fromEntries(buildVars().map((v) => [v.flag.replace(/^--/, ''), v.key]));

const OPTION_HELP: Record<string, string> = {
  yes: 'write without asking: flags, then the existing .env, then the defaults',
  'env-file': `the file to write (default: the repository's .env, ${REPO_ENV_FILE})`,
  ...Object.fromEntries(
    buildVars().map((v) => [v.flag.replace(/^--/, ''), `${v.name}: ${v.expected}${v.default === undefined ? '' : ` (default ${settingText(v.default)})`}`]),
  ),
};

const DETAILS = `Checks what the image build needs here (packer, qemu-system-x86_64, qemu-img, xorriso, KVM, free
disk in the output and cache directories against the model and image sizes, RAM) and shows each as
ok/missing with the exact fix; asks for the build profile, model, engine, context size, output
directory and mirror (flags given on the command line answer their question); shows a summary and
writes the .env that \`pnpm turbo build:image\` reads. When the .env exists, its values are the
defaults and the wizard asks before overwriting it. The file is written atomically (a temp file,
then a rename): Ctrl-C or Esc at any question leaves the old .env (or none) untouched and exits 130.

How to pass options: both \`pnpm run setup --help\` and \`pnpm run setup -- --help\` reach the wizard
(leading "--" are ignored), and so does \`npm run setup -- --help\`. The bare \`pnpm setup\` is pnpm's
own command, not this one. The root script runs \`tsx … scripts/src/setup.ts --\`: Node 20 and 22 take
a script's --env-file argument for their own and stop with "node: FILE: not found" when it does not
exist yet (nodejs/node#54232) unless a "--" comes first. Run the file directly the same way:
  tsx --conditions=source scripts/src/setup.ts -- --env-file FILE

Settings (the build reads them with flags > environment variables > the .env > the defaults):
${buildVars()
  .map((v) => `  ${v.name} (${v.flag})\n${wrap(v.description, 94).map((l) => `      ${l}`).join('\n')}`)
  .join('\n')}
Relative paths are relative to the directory of the .env file; ~ is the home directory.
The wizard writes what you answer: variables set in this shell are not copied into the file, but
they win over it at build time (the wizard names them).

Examples:
  pnpm run setup                                           # ask everything
  pnpm run setup --yes --profile test --mirror /srv/mirror  # no questions
  pnpm run setup --yes --model qwen2.5-coder-7b --context-size 16384 --env-file /tmp/x.env

Exit codes: 0 written (or left as it was), 2 a bad flag value, 3 a bad value in the .env with --yes,
4 the file cannot be written, 130 cancelled (nothing written).`;

function cancelled(): never {
  p.cancel('Setup cancelled: nothing was written.');
  process.exit(EXIT_CANCELLED);
}

function answer<T>(value: T): Exclude<T, symbol> {
  if (p.isCancel(value)) cancelled();
  return value as Exclude<T, symbol>;
}

const toFlags = (values: Record<string, unknown>): BuildFlags =>
  Object.fromEntries(
    Object.entries(FLAG_KEYS)
      .filter(([flag]) => typeof values[flag] === 'string')
      .map(([flag, key]) => [key, values[flag] as string]),
  );

const validator = (key: BuildSettingKey) => (value: string | undefined) => {
  const v = (value ?? '').trim();
  if (v === '') return undefined;
  return BUILD_VARS[key].parse(v).ok ? undefined : `expected ${BUILD_VARS[key].expected}`;
};

async function ask(settings: BuildSettings, given: Set<BuildSettingKey>, kvm: Kvm): Promise<BuildSettings> {
  const s = { ...settings };
  const fromFlag = (key: BuildSettingKey) => {
    if (!given.has(key)) return false;
    p.log.step(`${BUILD_VARS[key].name}: ${settingText(s[key]) || '(none)'} (from ${BUILD_VARS[key].flag})`);
    return true;
  };

  if (!fromFlag('profile')) {
    s.profile = answer(
      await p.select<BuildProfile>({
        message: 'Build profile',
        initialValue: s.profile,
        options: [
          { value: 'production', label: 'production', hint: `Ubuntu 24.04, downloads from upstream: needs the internet and KVM${kvm.usable ? '' : ' (not on this machine)'}` },
          { value: 'offline', label: 'offline', hint: `the production image from your mirror only: needs KVM${kvm.usable ? '' : ' (not on this machine)'}` },
          { value: 'test', label: 'test', hint: 'the Debian test base under TCG, from your mirror only: runs without KVM' },
        ],
      }),
    );
  }
  if (!fromFlag('model')) {
    s.model = answer(
      await p.select<string>({
        message: 'Model (download sizes are approximate)',
        initialValue: s.model,
        options: CATALOG.map((e) => ({ value: e.id, label: `${e.id}  ~${e.approxSizeGB} GB`, hint: e.title })),
      }),
    );
  }
  if (!fromFlag('engine')) {
    s.engine = answer(
      await p.select<BuildSettings['engine']>({
        message: 'Default inference engine',
        initialValue: s.engine,
        options: [
          { value: 'localai', label: 'localai', hint: 'LocalAI with its llama-cpp backend' },
          { value: 'llama-server', label: 'llama-server', hint: "llama.cpp's own server" },
        ],
      }),
    );
  }
  if (!fromFlag('contextSize')) {
    const text = answer(
      await p.text({
        message: `Context size in tokens (${CONTEXT_SIZE.min}-${CONTEXT_SIZE.max}), the template's default`,
        placeholder: String(s.contextSize),
        defaultValue: String(s.contextSize),
        validate: validator('contextSize'),
      }),
    );
    const parsed = BUILD_VARS.contextSize.parse(text.trim() || String(s.contextSize));
    if (parsed.ok) s.contextSize = parsed.value;
  }
  if (!fromFlag('outputDir')) {
    s.outputDir = answer(
      await p.text({
        message: 'Output directory for the image',
        placeholder: s.outputDir,
        defaultValue: s.outputDir,
        validate: validator('outputDir'),
      }),
    ).trim() || s.outputDir;
  }
  if (!fromFlag('mirror')) {
    const required = MIRROR_ONLY_PROFILES.includes(s.profile);
    const text = answer(
      await p.text({
        message: required
          ? `Mirror (required: the ${s.profile} profile fetches only from it) — a directory or an http(s):// base`
          : 'Mirror tried before upstream — a directory or an http(s):// base (empty: none)',
        initialValue: s.mirror ?? '',
        validate: (value) => {
          if ((value ?? '').trim() === '') return required ? `the ${s.profile} profile needs a mirror: a directory or an http(s):// base URL` : undefined;
          return validator('mirror')(value);
        },
      }),
    ).trim();
    s.mirror = text === '' ? undefined : text;
  }
  return s;
}

function settingsTable(settings: BuildSettings, previous: Partial<Record<BuildSettingKey, string>> | undefined): string {
  return buildVars()
    .map((v) => {
      const now = settingText(settings[v.key]);
      const before = previous?.[v.key];
      const change = previous !== undefined && (before ?? '') !== now ? paint('yellow', `  (was ${before === undefined || before === '' ? 'unset' : before})`) : '';
      return `${v.name.padEnd(26)} ${now === '' ? '(none)' : now}${change}`;
    })
    .join('\n');
}

async function main(values: Record<string, unknown>): Promise<number> {
  const yes = Boolean(values.yes);
  // --quiet (with --yes): only warnings and errors.
  const quiet = yes && Boolean(values.quiet);
  const ui = quiet
    ? { intro: () => {}, note: () => {}, outro: () => {}, info: () => {}, success: () => {} }
    : { intro: p.intro, note: p.note, outro: p.outro, info: p.log.info, success: p.log.success };
  const file = path.resolve(typeof values['env-file'] === 'string' ? values['env-file'] : REPO_ENV_FILE);
  const baseDir = path.dirname(file);
  const flags = toFlags(values);
  const given = new Set(Object.keys(flags) as BuildSettingKey[]);

  // The wizard writes the file's own values: real environment variables are reported, not copied.
  const read = collectBuildEnv({ file, env: {}, flags });
  const flagIssues = read.issues.filter((i) => i.source === 'flag');
  if (flagIssues.length > 0) throw buildEnvError(flagIssues);
  if (yes && read.issues.length > 0) throw buildEnvError(read.issues);
  if (!yes && !process.stdin.isTTY) {
    throw new UsageError('no terminal to ask the questions on', 'pass --yes (with flags) to write the .env without asking; see --help');
  }

  ui.intro('SLM-Copilot setup: the image build settings');
  if (read.fileExists) {
    ui.info(`${file} exists: its values are the defaults${yes ? '' : ', and nothing is overwritten without asking'}.`);
    for (const issue of read.issues.filter((i) => i.source === 'file')) {
      p.log.warn(`${issue.name}=${JSON.stringify(issue.value)} in ${file} is not valid (expected ${issue.expected}): the default is offered instead.`);
    }
  }

  const [tools, defaultsRam] = await Promise.all([checkTools(), checkRam(read.settings.profile)]);
  const kvm = await checkKvm(tools.find((t) => t.name === 'qemu-system-x86_64')?.status === 'ok');
  if (!yes) {
    const disk = await checkDisk(read.settings, baseDir);
    p.note(formatChecks([...tools, kvmForProfile(kvm, read.settings.profile), defaultsRam, ...disk]), `Prerequisites (for the ${read.settings.profile} profile and ${read.settings.model})`);
  }

  const settings = yes ? read.settings : await ask(read.settings, given, kvm);

  const checks = [
    ...tools,
    kvmForProfile(kvm, settings.profile),
    await checkRam(settings.profile),
    ...(await checkDisk(settings, baseDir)),
    ...(await checkMirror(settings, baseDir)),
  ];
  const overridden = buildVars().filter((v) => (process.env[v.name] ?? '').trim() !== '');
  const previous = read.fileExists ? read.fileValues : undefined;
  ui.note(
    `${settingsTable(settings, previous)}\n\n${formatChecks(checks)}` +
      (overridden.length > 0
        ? `\n\n${paint('yellow', 'Set in this shell, and winning over the file at build time:')}\n${overridden.map((v) => `  ${v.name}=${process.env[v.name]}`).join('\n')}`
        : ''),
    `Summary: ${file}`,
  );

  if (!yes) {
    const ok = answer(await p.confirm({ message: read.fileExists ? `Overwrite ${file} with these settings?` : `Write ${file}?`, initialValue: true }));
    if (!ok) {
      p.outro(`Left ${file} as it was.`);
      return 0;
    }
  }

  let result: WriteResult;
  writing = writeFileAtomic(file, renderEnvFile(settings, { extra: read.extra }), { mode: 0o644 });
  try {
    result = await writing;
  } finally {
    writing = undefined;
  }
  ui.success(result === 'unchanged' ? `${file} already has these settings.` : `${result === 'created' ? 'Wrote' : 'Updated'} ${file}.`);

  const next = (await commandExists('pnpm')) ? 'pnpm turbo build:image' : 'npm run build:image';
  const notes: string[] = [];
  if (file !== REPO_ENV_FILE) notes.push(`the build reads ${REPO_ENV_FILE} by default: this file is another one`);
  if (!kvm.usable && settings.profile !== 'test') notes.push(`run it on a host with KVM: ${kvm.check.detail}`);
  const missing = checks.filter((c) => c.status === 'missing' && c.name !== 'KVM');
  if (missing.length > 0) notes.push(`first fix: ${missing.map((c) => c.name).join(', ')}`);
  ui.outro(`Next: ${paint('bold', next)}${notes.length > 0 ? `\n   (${notes.join('; ')})` : ''}`);
  return 0;
}

let writing: Promise<WriteResult> | undefined;

// Ctrl-C outside a question (inside one, the prompt turns it into a cancel): exit 130; a write that
// has started finishes first, so the .env is either the old one or the complete new one.
process.on('SIGINT', () => {
  if (writing) {
    void writing.finally(() => process.exit(EXIT_CANCELLED));
    return;
  }
  cancelled();
});

// The root script ends with "--" (see --help: Node reads a script's own --env-file), and pnpm passes
// the user's "--" through too (`pnpm run setup -- --help`): drop the leading ones.
const argv = process.argv.slice(2);
while (argv[0] === '--') argv.shift();

process.exitCode = await runCommand(
  {
    name: 'pnpm run setup',
    summary: 'check this machine and write the .env of the image build',
    usage: 'pnpm run setup [--yes] [--profile P] [--model ID] [--engine E] [--context-size N] [--output DIR] [--mirror DIR|URL] [--cache DIR] [--env-file FILE]',
    options: OPTIONS,
    details: DETAILS,
  },
  OPTION_HELP,
  argv,
  ({ values }) => main(values),
);
