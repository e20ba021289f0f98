#!/usr/bin/env node
// Makes a fresh Debian/Ubuntu machine with only Node ready to run `npm test` or `npm run build:image`.
// Idempotent: each step checks first and does nothing when already satisfied.
// Plain JavaScript with no dependencies: it runs before anything is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8'));
const pnpmVersion = pkg.packageManager.replace(/^pnpm@/, '');
const purpose = process.argv.includes('--for') ? process.argv[process.argv.indexOf('--for') + 1] : 'test';

if (process.argv.includes('--help')) {
  console.log(`bootstrap — install what \`npm test\` / \`npm run build:image\` need (idempotent)

Usage: node scripts/bootstrap.mjs [--for test|build]

  1. checks Node >= 20.19
  2. installs pnpm ${pnpmVersion} with npm when another or no pnpm is on PATH
  3. installs the apt packages listed in scripts/apt-packages.json (as root; else prints the sudo line and stops)
  4. runs pnpm install --frozen-lockfile`);
  process.exit(0);
}

const started = performance.now();
const log = (msg) => console.error(`bootstrap: ${msg}`);
const fail = (msg) => {
  console.error(`bootstrap: ${msg}`);
  process.exit(1);
};

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19))
  fail(`Node ${process.versions.node} is too old: SLM-Copilot needs Node >= 20.19`);

// pnpm, pinned
const current = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
if (current.status !== 0 || current.stdout.trim() !== pnpmVersion) {
  log(`installing pnpm ${pnpmVersion} (found: ${current.status === 0 ? current.stdout.trim() : 'none'})`);
  const r = spawnSync('npm', ['install', '--global', '--no-fund', '--no-audit', `pnpm@${pnpmVersion}`], {
    stdio: 'inherit',
  });
  if (r.status !== 0) fail(`could not install pnpm; run: npm install --global pnpm@${pnpmVersion}`);
}

// apt packages
const wanted = JSON.parse(readFileSync(path.join(repo, 'scripts/apt-packages.json'), 'utf8'))[purpose];
if (!wanted) fail(`unknown --for ${purpose} (expected test or build)`);
const installed = (name) =>
  spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' }).stdout?.includes('install ok installed');
const missing = wanted.filter((p) => !installed(p));
if (missing.length > 0) {
  if (process.getuid?.() !== 0)
    fail(
      'missing apt packages; run:\n' +
        `  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing.join(' ')}\n` +
        'then run the command again',
    );
  log(`installing apt packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
}

// workspace dependencies
const r = spawnSync('pnpm', ['install', '--frozen-lockfile', '--reporter=append-only'], {
  cwd: repo,
  stdio: 'inherit',
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
});
if (r.status !== 0) fail('pnpm install failed');
log(`ready in ${((performance.now() - started) / 1000).toFixed(1)} s`);
