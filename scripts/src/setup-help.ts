/** The setup wizard's command line: its options (the build settings' flags from BUILD_VARS) and its help. */
import { REPO_ENV_FILE } from './build-env.js';
import { buildVarOptionHelp, buildVarOptions, usageLine } from './build-flags.js';
import { BUILD_PROFILES, buildVars, PROFILE_INFO } from './build-vars.js';
import { wrapWords } from './wrap.js';

const OPTIONS = {
  yes: { type: 'boolean', short: 'y', default: false },
  ...buildVarOptions(),
  'env-file': { type: 'string' },
} as const;

export const SETUP_OPTION_HELP: Record<string, string> = {
  yes: 'write without asking: flags, then the existing .env, then the defaults',
  'env-file': `the file to write (default: the repository's .env, ${REPO_ENV_FILE})`,
  ...buildVarOptionHelp(),
};

const settingsHelp = buildVars()
  .map((v) => [`  ${v.name} (${v.flag})`, ...wrapWords(v.description, 94).map((l) => `      ${l}`)].join('\n'))
  .join('\n');

const needs = wrapWords(`Needs: ${BUILD_PROFILES.map((p) => `${p} — ${PROFILE_INFO[p].needs}`).join('; ')}.`, 104).join(
  '\n',
);

const DETAILS = `Runs the checks the build itself runs before it starts (scripts/src/preflight.ts: the model's lock
entry, KVM, root for the test profile, packer, qemu, xorriso, the llama.cpp build tools, free disk in the
output and cache directories for image + model + cache, RAM) and shows each as ok/missing with the exact
fix; then asks only what the chosen profile uses: the model (not for test: it always bakes the tiny test
GGUF), the engine, the context size, the output directory and the mirror (required by offline; optional
otherwise, its files are staged into the build VM). Flags given on the command line answer their question.
${needs}
Shows a summary and writes the .env that \`npm run build:image\` (or \`pnpm turbo build:image\`) reads.
When the .env exists, its values are the defaults and the wizard asks before overwriting it. The file is
written atomically (a temp file, then a rename): Ctrl-C or Esc at any question leaves the old .env (or
none) untouched and exits 130.

How to pass options: both \`pnpm run setup --help\` and \`pnpm run setup -- --help\` reach the wizard
(leading "--" are ignored), and so does \`npm run setup -- --help\`. The bare \`pnpm setup\` is pnpm's
own command, not this one. The root script runs \`tsx … scripts/src/setup.ts --\`: Node 20 and 22 take
a script's --env-file argument for their own and stop with "node: FILE: not found" when it does not
exist yet (nodejs/node#54232) unless a "--" comes first. Run the file directly the same way:
  tsx --conditions=source scripts/src/setup.ts -- --env-file FILE

Settings (the build reads them with flags > environment variables > the .env > the defaults):
${settingsHelp}
Relative paths are relative to the directory of the .env file; ~ is the home directory.
The wizard writes what you answer: variables set in this shell are not copied into the file, but
they win over it at build time (the wizard names them).

Examples:
  pnpm run setup                                           # ask everything
  pnpm run setup --yes --profile test --mirror /srv/mirror  # no questions
  pnpm run setup --yes --model qwen2.5-coder-7b --context-size 16384 --env-file /tmp/x.env

Exit codes: 0 written (or left as it was), 2 a bad flag or flag value, 3 a bad value in the .env with --yes,
4 the file cannot be written, 130 cancelled (nothing written).`;

export const SETUP_SPEC = {
  name: 'pnpm run setup',
  summary: 'check this machine and write the .env of the image build',
  usage: usageLine('pnpm run setup [--yes]', ['[--env-file FILE]']),
  options: OPTIONS,
  details: DETAILS,
};
