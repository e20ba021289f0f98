// The hardening commands' command line (task-kit's runner): each has --help with examples, and a usage
// error — an unknown flag, a bad value — is one line on stderr and exit 2, before anything runs.
import { describe, expect, it } from 'vitest';
import { packageCli } from '@slm-copilot/task-kit/test-support/cli';

const cli = packageCli(import.meta.url);
const COMMANDS = ['load', 'testssl-full', 'systemd-security'];

describe('slm-hardening command line', () => {
  it('every command has --help with examples', async () => {
    for (const command of COMMANDS) {
      const r = await cli([command, '--help']);
      expect(r.exitCode, command).toBe(0);
      expect(r.stdout, command).toMatch(new RegExp(`^slm-hardening ${command} — `));
      expect(r.stdout, command).toMatch(/\nExamples:\n {2}pnpm --filter @slm-copilot\/hardening /);
    }
    const tool = await cli(['--help']);
    expect(tool.exitCode).toBe(0);
    for (const command of COMMANDS) expect(tool.stdout).toContain(`  ${command} `);
  }, 120_000);

  it('a usage error is one line on stderr, exit 2, nothing on stdout', async () => {
    const cases = [
      ...COMMANDS.map((command) => [command, '--bogus']),
      ['load', '--clients', 'many'],
      ['load', '--duration', '-5'],
      ['nope'],
    ];
    for (const args of cases) {
      const r = await cli(args);
      const what = args.join(' ');
      expect(r.exitCode, what).toBe(2);
      expect(r.stdout, what).toBe('');
      expect(r.stderr.trimEnd().split('\n'), what).toHaveLength(1);
      expect(r.stderr, what).toMatch(args[1] ? /--(bogus|clients|duration)/ : /nope/);
    }
  }, 120_000);
});
