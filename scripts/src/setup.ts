/**
 * The setup wizard new builders run first: `pnpm run setup`. It checks what the image build needs on
 * this machine (./setup-checks.ts), asks for the build settings (./setup-ask.ts; the contract of
 * ./build-vars.ts) and writes `.env` atomically, or with `--yes` takes the flags and writes without asking.
 * Its options and help: ./setup-help.ts.
 */
import path from 'node:path';
import * as p from '@clack/prompts';
import { commandExists, runCommand, UsageError, writeFileAtomic, type WriteResult } from '@slm-copilot/task-kit';
import {
  buildEnvError,
  buildVars,
  collectBuildEnv,
  REPO_ENV_FILE,
  renderEnvFile,
  settingText,
  type BuildEnvRead,
  type BuildSettingKey,
  type BuildSettings,
} from './build-env.js';
import { flagsFromValues } from './build-flags.js';
import { hostProbes, type KvmProbe } from './host-probes.js';
import type { Check } from './preflight.js';
import { ask, cancelled, EXIT_CANCELLED } from './setup-ask.js';
import { checksFor, formatChecks, paint } from './setup-checks.js';
import { SETUP_OPTION_HELP, SETUP_SPEC } from './setup-help.js';

interface Ui {
  intro(text: string): void;
  note(text: string, title: string): void;
  outro(text: string): void;
  info(text: string): void;
  success(text: string): void;
}

const silent: Ui = { intro: () => {}, note: () => {}, outro: () => {}, info: () => {}, success: () => {} };
const clack: Ui = { intro: p.intro, note: p.note, outro: p.outro, info: p.log.info, success: p.log.success };

function settingsTable(settings: BuildSettings, previous: BuildEnvRead['fileValues'] | undefined): string {
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

/** The summary before writing: the settings (with what changed), the checks, the shell's overrides. */
function summaryText(settings: BuildSettings, read: BuildEnvRead, checks: readonly Check[]): string {
  const overridden = buildVars().filter((v) => (process.env[v.name] ?? '').trim() !== '');
  const shell =
    overridden.length === 0
      ? ''
      : `\n\n${paint('yellow', 'Set in this shell, and winning over the file at build time:')}\n` +
        overridden.map((v) => `  ${v.name}=${process.env[v.name]}`).join('\n');
  return `${settingsTable(settings, read.fileExists ? read.fileValues : undefined)}\n\n${formatChecks(checks)}${shell}`;
}

/** Reads the file and the flags; refuses bad flags (and, with --yes, a bad file) before anything is shown. */
function start(values: Record<string, unknown>): { file: string; read: BuildEnvRead; given: Set<BuildSettingKey> } {
  const yes = Boolean(values.yes);
  const file = path.resolve(typeof values['env-file'] === 'string' ? values['env-file'] : REPO_ENV_FILE);
  const flags = flagsFromValues(values);
  // The wizard writes the file's own values: real environment variables are reported, not copied.
  const read = collectBuildEnv({ file, env: {}, flags });
  const flagIssues = read.issues.filter((i) => i.source === 'flag');
  if (flagIssues.length > 0) throw buildEnvError(flagIssues);
  if (yes && read.issues.length > 0) throw buildEnvError(read.issues);
  if (!yes && !process.stdin.isTTY) {
    throw new UsageError(
      'no terminal to ask the questions on: pass --yes (with flags) to write the .env without asking',
    );
  }
  return { file, read, given: new Set(Object.keys(flags) as BuildSettingKey[]) };
}

let writing: Promise<WriteResult> | undefined;

async function write(file: string, settings: BuildSettings, read: BuildEnvRead, ui: Ui): Promise<void> {
  let result: WriteResult;
  writing = writeFileAtomic(file, renderEnvFile(settings, { extra: read.extra }), { mode: 0o644 });
  try {
    result = await writing;
  } finally {
    writing = undefined;
  }
  const done = result === 'created' ? 'Wrote' : 'Updated';
  ui.success(result === 'unchanged' ? `${file} already has these settings.` : `${done} ${file}.`);
}

/** What to run next, and what stands in the way. */
async function nextSteps(file: string, settings: BuildSettings, checks: readonly Check[], kvm: KvmProbe) {
  const next = (await commandExists('pnpm')) ? 'pnpm turbo build:image' : 'npm run build:image';
  const notes: string[] = [];
  if (file !== REPO_ENV_FILE) notes.push(`the build reads ${REPO_ENV_FILE} by default: this file is another one`);
  if (!kvm.usable && settings.profile !== 'test') notes.push(`run it on a host with KVM: ${kvm.detail}`);
  const blocking = checks.filter((c) => c.blocking && c.name !== 'KVM');
  if (blocking.length > 0) notes.push(`the build will refuse until you fix: ${blocking.map((c) => c.name).join(', ')}`);
  return `Next: ${paint('bold', next)}${notes.length > 0 ? `\n   (${notes.join('; ')})` : ''}`;
}

async function main(values: Record<string, unknown>): Promise<number> {
  const yes = Boolean(values.yes);
  const { file, read, given } = start(values);
  // --quiet (with --yes): only warnings and errors.
  const ui = yes && values.quiet ? silent : clack;
  const baseDir = path.dirname(file);

  ui.intro('SLM-Copilot setup: the image build settings');
  if (read.fileExists) {
    ui.info(`${file} exists: its values are the defaults${yes ? '' : ', and nothing is overwritten without asking'}.`);
    for (const issue of read.issues.filter((i) => i.source === 'file')) {
      const bad = `${issue.name}=${JSON.stringify(issue.value)} in ${file} is not valid (expected ${issue.expected})`;
      p.log.warn(`${bad}: the default is offered instead.`);
    }
  }
  const kvm = await hostProbes.kvm();
  if (!yes) {
    const first = await checksFor(read.settings, baseDir);
    p.note(formatChecks(first), `Prerequisites (for the ${read.settings.profile} profile and ${read.settings.model})`);
  }
  const settings = yes ? read.settings : await ask(read.settings, given, kvm);
  const checks = await checksFor(settings, baseDir);
  ui.note(summaryText(settings, read, checks), `Summary: ${file}`);
  if (!yes) {
    const message = read.fileExists ? `Overwrite ${file} with these settings?` : `Write ${file}?`;
    const ok = await p.confirm({ message, initialValue: true });
    if (p.isCancel(ok)) cancelled();
    if (!ok) {
      p.outro(`Left ${file} as it was.`);
      return 0;
    }
  }
  await write(file, settings, read, ui);
  ui.outro(await nextSteps(file, settings, checks, kvm));
  return 0;
}

// Ctrl-C outside a question (inside one, the prompt turns it into a cancel): exit 130; a write that
// has started finishes first, so the .env is either the old one or the complete new one.
process.on('SIGINT', () => {
  if (writing) {
    void writing.finally(() => process.exit(EXIT_CANCELLED));
    return;
  }
  cancelled();
});

// The root script ends with "--" (see --help: Node reads a script's own --env-file); runCommand drops
// leading "--", and pnpm's own pass-through one (`pnpm run setup -- --help`) with it.
process.exitCode = await runCommand(SETUP_SPEC, SETUP_OPTION_HELP, process.argv.slice(2), ({ values }) => main(values));
