// slm-bench's command line (task-kit's runner): --help with examples, and a usage error — an unknown
// flag, a bad value, a flag that needs another — is one line on stderr and exit 2, before anything runs.
import { describe, expect, it } from 'vitest';
import { packageCli } from '@slm-copilot/task-kit/test-support/cli';

const cli = packageCli(import.meta.url);

describe('slm-bench command line', () => {
  it('--help shows the options and examples', async () => {
    const r = await cli(['--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^slm-bench — /);
    expect(r.stdout).toMatch(/\nExamples:\n {2}pnpm bench --quick\n/);
  }, 60_000);

  it('a usage error is one line on stderr, exit 2, nothing on stdout', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--bogus'], /--bogus/],
      [['--engine', 'nope'], /--engine .*"nope"/],
      [['--threads', 'x'], /--threads .*"x"/],
      [['--variant', 'avx9'], /--variant .*"avx9"/],
      [['--key', 'sk-x'], /--key needs --url/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      const what = args.join(' ');
      expect(r.exitCode, what).toBe(2);
      expect(r.stdout, what).toBe('');
      expect(r.stderr.trimEnd().split('\n'), what).toHaveLength(1);
      expect(r.stderr, what).toMatch(message);
    }
  }, 120_000);
});
