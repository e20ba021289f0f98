import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nonEmptyLines, packageCli } from '@slm-copilot/task-kit/test-support/cli';

const run = packageCli(import.meta.url);
const cli = (...args: string[]) => run(args);

const lines = nonEmptyLines;

describe('slm-copilot-service CLI', () => {
  it('a bogus flag (or the old --prefix) exits 2 with one line on stderr, for every command', async () => {
    for (const args of [
      ['configure', '--bogus'],
      ['bootstrap', '--bogus'],
      ['install', '--bogus'],
      ['configure', '--prefix', '/tmp'],
      ['install'],
      ['reconfigure', '--bogus'],
      ['reconfigure'],
    ]) {
      const r = await cli(...args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(lines(r.stderr), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(/^slm-copilot-service \w+: .*(--bogus|--prefix|--plan|--context-file)/);
    }
  }, 120_000);

  it('configure, bootstrap, reconfigure --root on a root with no installed appliance refuse', async () => {
    for (const stage of ['configure', 'bootstrap', 'reconfigure']) {
      const root = await mkdtemp(path.join(tmpdir(), 'lifecycle-cli-'));
      const r = await cli(stage, '--root', root, ...(stage === 'reconfigure' ? ['--context-file', '/dev/null'] : []));
      expect(r.exitCode, stage).toBe(4); // ExitCode.environment
      expect(r.stderr).toContain(path.join(root, 'etc/slm-copilot/installed.json'));
      expect(await readdir(root), `${stage} wrote into the root`).toEqual([]);
    }
  }, 60_000);

  it('every command has --help with examples', async () => {
    for (const stage of ['install', 'configure', 'bootstrap', 'reconfigure']) {
      const r = await cli(stage, '--help');
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/--root <value>/);
      expect(r.stdout).toMatch(/Examples:\n {2}slm-copilot-service /);
    }
  }, 60_000);
});
