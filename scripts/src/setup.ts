/**
 * The setup wizard new builders run first: `pnpm run setup`. It checks what the image build needs on
 * this machine, asks for the build settings (the contract of ./build-env.ts) and writes `.env`
 * atomically, or with `--yes` takes the flags and writes without asking.
 */
import path from 'node:path';
import { styleText } from 'node:util';
import * as p from '@clack/prompts';
import { CATALOG, readLock } from '@slm-copilot/model-fetch';
import { commandExists, runCommand, UsageError, writeFileAtomic, type WriteResult } from '@slm-copilot/task-kit';
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
import { buildVarOptionHelp, buildVarOptions, flagsFromValues } from './build-flags.js';
import { recipeFor } from './build-plan.js';
import { LOCK_FILE } from './lock-file.js';
import { hostProbes, type KvmProbe } from './host-probes.js';
import { preflightChecks, type Check, type CheckStatus } from './preflight.js';

/** 128 + SIGINT: what a shell reports for Ctrl-C; the wizard exits with it whenever it is cancelled. */
export const EXIT_CANCELLED = 130;

const useColor = Boolean(process.stdout.isTTY) && !('NO_COLOR' in process.env);
const paint = (format: Parameters<typeof styleText>[0], text: string) => (useColor ? styleText(format, text) : text);

// ---------------------------------------------------------------------------------------------
// Prerequisites: the build's own preflight (./preflight.ts), for the profile being chosen

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

/** The checks the build runs before it starts, for these settings (the lock read once). */
async function checksFor(settings: BuildSettings, baseDir: string): Promise<Check[]> {
  const resolved = resolveBuildPaths(settings, baseDir);
  const recipe = recipeFor({ ...settings, resolved }, await readLock(LOCK_FILE), LOCK_FILE);
  return preflightChecks({ recipe, outputDir: resolved.outputDir, cache: resolved.cache }, hostProbes);
}

function formatChecks(checks: readonly Check[]): string {
  const nameWidth = Math.max(...checks.map((c) => c.name.length));
  const indent = 8 + nameWidth + 2;
  // clack's note box takes about 6 columns of the terminal
  const width = Math.max(30, Math.min(process.stdout.columns || 80, 140) - 6 - indent);
  const label: Record<CheckStatus, string> = {
    ok: paint('green', 'ok     '),
    missing: paint('red', 'missing'),
    low: paint('yellow', 'low    '),
    info: paint('cyan', 'info   '),
  };
  return checks
    .map((c) => {
      const lines = [...wrap(c.detail, width), ...(c.fix ? wrap(`fix: ${c.fix}`, width) : [])];
      return lines
        .map((l, i) => (i === 0 ? `${label[c.status]} ${c.name.padEnd(nameWidth)}  ${l}` : `${' '.repeat(indent)}${l}`))
        .join('\n');
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// The wizard

const OPTIONS = {
  yes: { type: 'boolean', short: 'y', default: false },
  ...buildVarOptions(),
  'env-file': { type: 'string' },
} as const;

const OPTION_HELP: Record<string, string> = {
  yes: 'write without asking: flags, then the existing .env, then the defaults',
  'env-file': `the file to write (default: the repository's .env, ${REPO_ENV_FILE})`,
  ...buildVarOptionHelp(),
};

const DETAILS = `Runs the checks the build itself runs before it starts (scripts/src/preflight.ts: the model's lock
entry, KVM, root for the test profile, packer, qemu, xorriso, the llama.cpp build tools, free disk in the
output and cache directories for image + model + cache, RAM) and shows each as ok/missing with the exact
fix; then asks only what the chosen profile uses: the model (not for test: it always bakes the tiny test
GGUF), the engine, the context size, the output directory and the mirror (required by offline; optional
otherwise, its files are staged into the build VM). Flags given on the command line answer their question.
Needs: production — KVM and the internet; offline — KVM and the npm registry; test — the npm registry,
Debian apt and root (the Debian base image), no KVM. Shows a summary and writes the .env that
\`npm run build:image\` (or \`pnpm turbo build:image\`) reads. When the .env exists, its values are the
defaults and the wizard asks before overwriting it. The file is written atomically (a temp file, then a
rename): Ctrl-C or Esc at any question leaves the old .env (or none) untouched and exits 130.

How to pass options: both \`pnpm run setup --help\` and \`pnpm run setup -- --help\` reach the wizard
(leading "--" are ignored), and so does \`npm run setup -- --help\`. The bare \`pnpm setup\` is pnpm's
own command, not this one. The root script runs \`tsx … scripts/src/setup.ts --\`: Node 20 and 22 take
a script's --env-file argument for their own and stop with "node: FILE: not found" when it does not
exist yet (nodejs/node#54232) unless a "--" comes first. Run the file directly the same way:
  tsx --conditions=source scripts/src/setup.ts -- --env-file FILE

Settings (the build reads them with flags > environment variables > the .env > the defaults):
${buildVars()
  .map(
    (v) =>
      `  ${v.name} (${v.flag})\n${wrap(v.description, 94)
        .map((l) => `      ${l}`)
        .join('\n')}`,
  )
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

const validator = (key: BuildSettingKey) => (value: string | undefined) => {
  const v = (value ?? '').trim();
  if (v === '') return undefined;
  return BUILD_VARS[key].parse(v).ok ? undefined : `expected ${BUILD_VARS[key].expected}`;
};

async function ask(settings: BuildSettings, given: Set<BuildSettingKey>, kvm: KvmProbe): Promise<BuildSettings> {
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
          {
            value: 'production',
            label: 'production',
            hint: `Ubuntu 24.04, downloads from upstream: needs the internet and KVM${kvm.usable ? '' : ' (not on this machine)'}`,
          },
          {
            value: 'offline',
            label: 'offline',
            hint: `the production image from your mirror only: needs KVM${kvm.usable ? '' : ' (not on this machine)'}`,
          },
          {
            value: 'test',
            label: 'test',
            hint: 'the Debian test base under TCG: needs the npm registry, Debian apt and root; no KVM',
          },
        ],
      }),
    );
  }
  if (s.profile === 'test') {
    p.log.step(`${BUILD_VARS.model.name}: not asked (the test profile always bakes the tiny test GGUF)`);
  } else if (!fromFlag('model')) {
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
    s.outputDir =
      answer(
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
          : 'Mirror (optional) — a directory (its files are staged into the build VM) or an http(s):// base; empty: none',
        initialValue: s.mirror ?? '',
        validate: (value) => {
          if ((value ?? '').trim() === '')
            return required
              ? `the ${s.profile} profile needs a mirror: a directory or an http(s):// base URL`
              : undefined;
          return validator('mirror')(value);
        },
      }),
    ).trim();
    s.mirror = text === '' ? undefined : text;
  }
  return s;
}

function settingsTable(
  settings: BuildSettings,
  previous: Partial<Record<BuildSettingKey, string>> | undefined,
): string {
  return buildVars()
    .map((v) => {
      const now = settingText(settings[v.key]);
      const before = previous?.[v.key];
      const change =
        previous !== undefined && (before ?? '') !== now
          ? paint('yellow', `  (was ${before === undefined || before === '' ? 'unset' : before})`)
          : '';
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
  const flags = flagsFromValues(values);
  const given = new Set(Object.keys(flags) as BuildSettingKey[]);

  // The wizard writes the file's own values: real environment variables are reported, not copied.
  const read = collectBuildEnv({ file, env: {}, flags });
  const flagIssues = read.issues.filter((i) => i.source === 'flag');
  if (flagIssues.length > 0) throw buildEnvError(flagIssues);
  if (yes && read.issues.length > 0) throw buildEnvError(read.issues);
  if (!yes && !process.stdin.isTTY) {
    throw new UsageError(
      'no terminal to ask the questions on',
      'pass --yes (with flags) to write the .env without asking; see --help',
    );
  }

  ui.intro('SLM-Copilot setup: the image build settings');
  if (read.fileExists) {
    ui.info(`${file} exists: its values are the defaults${yes ? '' : ', and nothing is overwritten without asking'}.`);
    for (const issue of read.issues.filter((i) => i.source === 'file')) {
      p.log.warn(
        `${issue.name}=${JSON.stringify(issue.value)} in ${file} is not valid (expected ${issue.expected}): the default is offered instead.`,
      );
    }
  }

  const kvm = await hostProbes.kvm();
  if (!yes) {
    const first = await checksFor(read.settings, baseDir);
    p.note(formatChecks(first), `Prerequisites (for the ${read.settings.profile} profile and ${read.settings.model})`);
  }

  const settings = yes ? read.settings : await ask(read.settings, given, kvm);
  const checks = await checksFor(settings, baseDir);
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
    const ok = answer(
      await p.confirm({
        message: read.fileExists ? `Overwrite ${file} with these settings?` : `Write ${file}?`,
        initialValue: true,
      }),
    );
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
  ui.success(
    result === 'unchanged'
      ? `${file} already has these settings.`
      : `${result === 'created' ? 'Wrote' : 'Updated'} ${file}.`,
  );

  const next = (await commandExists('pnpm')) ? 'pnpm turbo build:image' : 'npm run build:image';
  const notes: string[] = [];
  if (file !== REPO_ENV_FILE) notes.push(`the build reads ${REPO_ENV_FILE} by default: this file is another one`);
  if (!kvm.usable && settings.profile !== 'test') notes.push(`run it on a host with KVM: ${kvm.detail}`);
  const blocking = checks.filter((c) => c.blocking && c.name !== 'KVM');
  if (blocking.length > 0) notes.push(`the build will refuse until you fix: ${blocking.map((c) => c.name).join(', ')}`);
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
    usage:
      'pnpm run setup [--yes] [--profile P] [--model ID] [--engine E] [--context-size N] [--output DIR] [--mirror DIR|URL] [--cache DIR] [--env-file FILE]',
    options: OPTIONS,
    details: DETAILS,
  },
  OPTION_HELP,
  argv,
  ({ values }) => main(values),
);
