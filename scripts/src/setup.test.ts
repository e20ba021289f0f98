/**
 * The real wizard in real processes: interactive runs in a pseudo-terminal (a private tmux server),
 * answered with arrow keys, Enter and typing; --yes, --help and a bad flag as plain child processes.
 * Every run works in a temp directory and writes only the file named by --env-file.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dotenv from 'dotenv';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CATALOG } from '@slm-copilot/model-fetch';
import { buildVars, renderEnvFile, type BuildSettings } from './build-env.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tsx = path.join(repo, 'node_modules/.bin/tsx');
const setupTs = path.join(repo, 'scripts/src/setup.ts');
/** As the root `setup` script runs it: `tsx --conditions=source scripts/src/setup.ts -- <args>`. */
const wizardCommand = (args: string[]) => [tsx, '--conditions=source', setupTs, '--', ...args];

const STEP_TIMEOUT = 30_000; // tsx start-up on a busy 2-core machine
const TEST_TIMEOUT = 120_000;

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('SLM_COPILOT_') || k === 'TMUX' || k === 'TMUX_PANE' || k === 'CI') continue;
    env[k] = v;
  }
  return { ...env, TERM: 'xterm-256color', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };
}

const stripAnsi = (text: string) => text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], cwd: string): Promise<Run> {
  const [file, ...rest] = wizardCommand(args);
  return new Promise((resolve) => {
    const child = execFile(
      file!,
      rest,
      { cwd, env: childEnv(), timeout: 60_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout: stripAnsi(stdout), stderr: stripAnsi(stderr) });
      },
    );
    child.stdin?.end();
  });
}

function tmux(socket: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'tmux',
      ['-u', '-S', socket, '-f', '/dev/null', ...args],
      { env: childEnv(), timeout: 10_000, encoding: 'utf8' },
      (error, stdout, stderr) =>
        error ? reject(new Error(`tmux ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout),
    );
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The wizard in a 120x40 pseudo-terminal of a private tmux server; its exit code goes to a file. */
class Terminal {
  readonly socket: string;
  readonly rcFile: string;
  private readonly session = 'wizard';
  constructor(dir: string) {
    this.socket = path.join(dir, 'tmux.sock');
    this.rcFile = path.join(dir, 'exit-code');
  }

  async start(args: string[], cwd: string): Promise<void> {
    const command = `${wizardCommand(args).map(sq).join(' ')}; echo $? > ${sq(this.rcFile)}; sleep 600`;
    await tmux(this.socket, ['new-session', '-d', '-s', this.session, '-x', '120', '-y', '40', '-c', cwd, command]);
  }

  /** The whole pane with its scrollback, wrapped lines joined. */
  screen(): Promise<string> {
    return tmux(this.socket, ['capture-pane', '-p', '-J', '-S', '-', '-t', this.session]);
  }

  async waitFor(pattern: RegExp, timeoutMs = STEP_TIMEOUT): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await this.screen();
      if (pattern.test(text)) return text;
      if (Date.now() > deadline)
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}; the screen:\n${text}`);
      await sleep(100);
    }
  }

  /** tmux key names: Down, Enter, BSpace, C-c, … */
  async keys(...keys: string[]): Promise<void> {
    await tmux(this.socket, ['send-keys', '-t', this.session, ...keys]);
  }

  async type(text: string): Promise<void> {
    await tmux(this.socket, ['send-keys', '-t', this.session, '-l', text]);
  }

  async exitCode(timeoutMs = STEP_TIMEOUT): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(this.rcFile) || (await readFile(this.rcFile, 'utf8')).trim() === '') {
      if (Date.now() > deadline)
        throw new Error(`the wizard did not exit within ${timeoutMs} ms; the screen:\n${await this.screen()}`);
      await sleep(100);
    }
    return Number((await readFile(this.rcFile, 'utf8')).trim());
  }

  async kill(): Promise<void> {
    await tmux(this.socket, ['kill-session', '-t', this.session]).catch(() => undefined);
    await tmux(this.socket, ['kill-server']).catch(() => undefined);
  }
}

/** An active (not yet answered) clack prompt whose message starts with `message`. */
const active = (message: string) => new RegExp(`◆\\s+${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);

let dir: string; // the test's own files (tmux socket, exit code)
let work: string; // the wizard's working directory: holds only what it writes
let term: Terminal | undefined;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'setup-wizard-'));
  work = path.join(dir, 'work');
  await mkdir(work);
});

afterEach(async () => {
  await term?.kill();
  term = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('setup wizard in a terminal', () => {
  it(
    'checks prerequisites, asks every question and writes the answers to .env',
    async () => {
      const mirror = path.join(dir, 'mirror');
      await mkdir(mirror);
      const envFile = path.join(work, '.env');
      term = new Terminal(dir);
      await term.start(['--env-file', envFile], work);

      const first = await term.waitFor(active('Build profile'));
      expect(first).toMatch(/Prerequisites/);
      for (const name of ['KVM', 'RAM', 'network', 'model lock']) {
        expect(first).toMatch(new RegExp(`(ok|missing|low|info)\\s+${name}\\b`));
      }
      for (const tool of ['packer', 'qemu-system-x86_64', 'qemu-img', 'xorriso']) {
        expect(first).toMatch(new RegExp(`(ok\\s+tools\\s+installed: .*|(missing|info)\\s+)\\b${tool}\\b`, 's'));
      }
      expect(first).toMatch(/disk \(output/);
      expect(first).toMatch(/needs ≈ [0-9.]+ GB/);
      expect(first).toMatch(/(ok|missing)\s+KVM\s+\/dev\/kvm/);

      await term.keys('Down', 'Down', 'Enter'); // production, offline, [test]
      // the test profile always bakes the tiny test GGUF: no model question
      expect(await term.waitFor(active('Default inference engine'))).toMatch(/SLM_COPILOT_MODEL: not asked/);
      await term.keys('Down', 'Enter'); // llama-server
      await term.waitFor(active('Context size'));
      await term.type('12');
      await term.keys('Enter');
      await term.waitFor(/expected an integer from 2048 to 262144/); // refused in place
      await term.keys('BSpace', 'BSpace');
      await term.type('16384');
      await term.keys('Enter');
      await term.waitFor(active('Output directory'));
      await term.type('images');
      await term.keys('Enter');
      await term.waitFor(active('Mirror (optional)'));
      await term.type(mirror); // optional for test: its files are staged into the build VM
      await term.keys('Enter');
      const summary = await term.waitFor(active(`Write ${envFile}?`));
      expect(summary).toMatch(/Summary/);
      expect(summary).toMatch(/SLM_COPILOT_CONTEXT_SIZE\s+16384/);
      expect(summary).toMatch(/root\s+/); // the test profile's own needs: root, apt and the npm registry
      expect(summary).toMatch(/network\s+the test build needs the npm\s+registry/);
      await term.keys('Enter'); // Yes

      expect(await term.exitCode()).toBe(0);
      const screen = await term.screen();
      expect(screen).toMatch(/Next: pnpm turbo build:image/);
      expect(await readdir(work)).toEqual(['.env']);
      expect(dotenv.parse(await readFile(envFile, 'utf8'))).toEqual({
        SLM_COPILOT_PROFILE: 'test',
        SLM_COPILOT_MODEL: CATALOG[0]!.id,
        SLM_COPILOT_ENGINE: 'llama-server',
        SLM_COPILOT_CONTEXT_SIZE: '16384',
        SLM_COPILOT_OUTPUT_DIR: 'images',
        SLM_COPILOT_MIRROR: mirror,
        SLM_COPILOT_CACHE: '~/.cache/slm-copilot',
      });
    },
    TEST_TIMEOUT,
  );

  it(
    'Ctrl-C at a question exits 130 and writes nothing, not even a temp file',
    async () => {
      const envFile = path.join(work, '.env');
      term = new Terminal(dir);
      await term.start(['--env-file', envFile], work);
      await term.waitFor(active('Build profile'));
      await term.keys('Enter');
      await term.waitFor(active('Model'));
      await term.keys('Down', 'Enter');
      await term.waitFor(active('Default inference engine'));
      await term.keys('C-c');
      expect(await term.exitCode()).toBe(130);
      expect(await term.screen()).toMatch(/cancelled: nothing was written/);
      expect(await readdir(work)).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'offers the values of an existing .env as the defaults and asks before overwriting it',
    async () => {
      const mirror = 'https://mirror.example/slm';
      const envFile = path.join(work, '.env');
      const before: BuildSettings = {
        profile: 'offline',
        model: CATALOG[2]!.id,
        engine: 'llama-server',
        contextSize: 8192,
        outputDir: './out',
        mirror,
        cache: '/var/cache/slm',
      };
      const original = renderEnvFile(before);
      await writeFile(envFile, original);
      term = new Terminal(dir);
      await term.start(['--env-file', envFile], work);

      const first = await term.waitFor(active('Build profile'));
      expect(first).toContain(`${envFile} exists: its values are the defaults`);
      expect(first).toMatch(/● offline/);
      await term.keys('Enter');
      expect(await term.waitFor(active('Model'))).toMatch(new RegExp(`● ${CATALOG[2]!.id.replace(/\./g, '\\.')}`));
      await term.keys('Enter');
      await term.waitFor(active('Default inference engine'));
      await term.keys('Enter');
      await term.waitFor(active('Context size'));
      await term.keys('Enter'); // keeps 8192
      await term.waitFor(active('Output directory'));
      await term.keys('Enter'); // keeps ./out
      expect(await term.waitFor(active('Mirror (required'))).toContain(mirror); // pre-filled
      await term.keys('Enter');
      const summary = await term.waitFor(active(`Overwrite ${envFile}`));
      expect(summary).toMatch(/SLM_COPILOT_CONTEXT_SIZE\s+8192\s/);
      expect(summary).not.toContain('(was '); // nothing changed
      await term.keys('Right', 'Enter'); // No
      expect(await term.exitCode()).toBe(0);
      expect(await term.screen()).toMatch(/Left .*\.env as it was/);
      expect(await readFile(envFile, 'utf8')).toBe(original);
      expect(await readdir(work)).toEqual(['.env']);
    },
    TEST_TIMEOUT,
  );
});

describe('setup wizard without a terminal', () => {
  it(
    '--yes with flags writes the .env without asking',
    async () => {
      const envFile = path.join(work, 'nested/dir/.env'); // a new directory: also the Node --env-file pitfall
      const r = await run(
        [
          '--yes',
          '--profile',
          'offline',
          '--model',
          'qwen2.5-coder-3b',
          '--engine',
          'llama-server',
          '--context-size',
          '8192',
          '--output',
          'out',
          '--mirror',
          'https://mirror.example/slm',
          '--env-file',
          envFile,
        ],
        work,
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Wrote ${envFile}.`);
      expect(r.stdout).toMatch(/Next: (pnpm turbo|npm run) build:image/);
      const text = await readFile(envFile, 'utf8');
      expect(text).toBe(
        renderEnvFile({
          profile: 'offline',
          model: 'qwen2.5-coder-3b',
          engine: 'llama-server',
          contextSize: 8192,
          outputDir: 'out',
          mirror: 'https://mirror.example/slm',
          cache: '~/.cache/slm-copilot',
        }),
      );
      expect(await readdir(path.dirname(envFile))).toEqual(['.env']);

      // again with one flag: the rest comes from the file, which is updated in place
      const again = await run(['--yes', '--context-size', '4096', '--env-file', envFile], work);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(`Updated ${envFile}.`);
      expect(dotenv.parse(await readFile(envFile, 'utf8'))).toMatchObject({
        SLM_COPILOT_PROFILE: 'offline',
        SLM_COPILOT_CONTEXT_SIZE: '4096',
      });
    },
    TEST_TIMEOUT,
  );

  it(
    '--help explains the options, the settings and how to pass arguments through pnpm',
    async () => {
      const r = await run(['--help'], work);
      expect(r.code).toBe(0);
      // every setting of the one list, by flag (in the usage line too) and by variable
      const settings = buildVars().flatMap((v) => [`${v.flag} <value>`, `${v.flag} ${v.placeholder}]`, v.name]);
      for (const text of [
        ...settings,
        '--yes',
        '--env-file',
        'Examples:',
        'pnpm run setup --help',
        'pnpm run setup -- --help',
        'pnpm turbo build:image',
        '130',
      ]) {
        expect(r.stdout).toContain(text);
      }
      expect(await readdir(work)).toEqual([]);
      // the root script ends with "--" so that Node does not take --env-file for its own
      const pkg = JSON.parse(await readFile(path.join(repo, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      };
      expect(pkg.scripts.setup).toBe(
        'node scripts/bootstrap.mjs --for build && tsx --conditions=source scripts/src/setup.ts --',
      );
    },
    TEST_TIMEOUT,
  );

  it(
    'refuses a bad flag value, naming the flag and the value, and writes nothing',
    async () => {
      const envFile = path.join(work, '.env');
      for (const args of [
        ['--yes', '--context-size', '12'],
        ['--context-size', '12'],
      ]) {
        const r = await run([...args, '--env-file', envFile], work);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain(
          '--context-size "12" (SLM_COPILOT_CONTEXT_SIZE): expected an integer from 2048 to 262144',
        );
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
      }
      const bad = await run(['--yes', '--profile', 'offline', '--env-file', envFile], work);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('SLM_COPILOT_MIRROR (--mirror) is not set');
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
      expect(await readdir(work)).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'an unknown flag is one line naming it, exit 2, and writes nothing',
    async () => {
      const r = await run(['--bogus', '--env-file', path.join(work, '.env')], work);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe('pnpm run setup: unknown option --bogus (see pnpm run setup --help)\n');
      expect(await readdir(work)).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
