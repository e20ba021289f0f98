// The slm-testbed command line, run the way the README shows it: the package's `dev` script (what
// `pnpm --filter @slm-copilot/testbed dev …` runs), through a shell with node_modules/.bin on PATH.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let devScript: string;
let dir: string;
const env = () => ({ ...process.env, NO_COLOR: '1', PATH: `${pkg}/node_modules/.bin:${process.env.PATH}` });
const dev = (...args: string[]) =>
  $({ cwd: pkg, nothrow: true, quiet: true, env: env() })`sh -c ${`${devScript} "$@"`} sh ${args}`;

beforeAll(async () => {
  devScript = JSON.parse(await readFile(path.join(pkg, 'package.json'), 'utf8')).scripts.dev;
  dir = await mkdtemp(path.join(tmpdir(), 'testbed-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('slm-testbed CLI (the dev script)', () => {
  it('starts from source and has --help with examples for every command', async () => {
    const top = await dev('--help');
    expect(top.stderr).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find/);
    expect(top.exitCode, top.stderr).toBe(0);
    expect(top.stdout).toMatch(/^Usage: slm-testbed <command>/m);
    for (const command of ['build-llama', 'tiny-model', 'devstral-shaped', 'mirror']) {
      const r = await dev(command, '--help');
      expect(r.exitCode, `${command}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: slm-testbed ${command}`, 'm'));
      expect(r.stdout).toMatch(/^Examples:\n {2}slm-testbed /m);
    }
  }, 120_000);

  it('refuses a bad flag or value with exit 2 and one line naming it, before doing anything', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['build-llama', '--bogus'], /--bogus/],
      [['tiny-model', '--bogus'], /--bogus/],
      [['build-llama', '--variant', 'nope'], /--variant .*"nope"/],
      [['build-llama', '--jobs', '0'], /--jobs .*"0"/],
      [['mirror'], /--dir is required/],
      [['mirror', '--dir', dir, '--port', 'x'], /--port .*"x"/],
      [['mirror', '--dir', dir, '--faults', path.join(dir, 'missing.json')], /--faults .*missing\.json/],
    ];
    for (const [args, message] of cases) {
      const r = await dev(...args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).toBe('');
    }
  }, 120_000);

  it('mirror --json: its address, then one JSON object per request; Ctrl-C stops it', async () => {
    await writeFile(path.join(dir, 'a.bin'), 'hello mirror');
    const child = spawn('sh', ['-c', `exec ${devScript} "$@"`, 'sh', 'mirror', '--dir', dir, '--json'], {
      cwd: pkg,
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const lines = () => out.split('\n').filter(Boolean);
    const waitFor = async (n: number) => {
      while (lines().length < n) await new Promise((r) => setTimeout(r, 50));
    };
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    await waitFor(1);
    const { baseUrl } = JSON.parse(lines()[0]!) as { baseUrl: string };
    const body = await (await fetch(`${baseUrl}/a.bin`, { headers: { Range: 'bytes=6-' } })).text();
    expect(body).toBe('mirror');
    await waitFor(2);
    expect(JSON.parse(lines()[1]!)).toMatchObject({ method: 'GET', path: '/a.bin', status: 206, bytes: 6 });
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  }, 120_000);
});
