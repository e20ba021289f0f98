import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { nonEmptyLines, packageCli } from '@slm-copilot/task-kit/test-support/cli';
import { describe, expect, it } from 'vitest';

// (packageCli finds the package from a file in its src/)
const run = packageCli(new URL('../cli.ts', import.meta.url).href);

describe('slm-copilot-service team', () => {
  it('has --help with examples; a bad flag value is one line, exit 2', async () => {
    const help = await run(['team', '--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toMatch(/Examples:\n {2}slm-copilot-service team /);
    for (const args of [['--interval', 'soon'], ['--interval', '0'], ['--bogus']]) {
      const r = await run(['team', ...args]);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(nonEmptyLines(r.stderr), args.join(' ')).toHaveLength(1);
    }
  }, 60_000);

  it('refuses on a root nothing was configured on, writing nothing', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'lifecycle-team-'));
    const r = await run(['team', '--once', '--root', root]);
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toContain('nothing configured yet');
    expect(await readdir(root)).toEqual([]);
  }, 60_000);
});
