import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCommand, runSubcommands } from './cli.js';
import { ExitCode, TaskError, UsageError } from './errors.js';

/** Captures what runCommand writes to stdout and stderr. */
function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((c) => (out.push(String(c)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((c) => (err.push(String(c)), true));
  return { stdout: () => out.join(''), stderrLines: () => err.join('').split('\n').filter(Boolean) };
}
afterEach(() => vi.restoreAllMocks());

const spec = {
  name: 'tool run',
  summary: 'does a thing',
  usage: 'tool run --name X',
  options: { name: { type: 'string' } },
  details: 'Examples:\n  tool run --name x',
} as const;

describe('runCommand', () => {
  it('an unknown flag, a flag without its value: exit 2, one line naming the flag, main never runs', async () => {
    for (const [argv, flag] of [
      [['--bogus'], '--bogus'],
      [['--name'], '--name'],
    ] as const) {
      const io = capture();
      const main = vi.fn(async () => undefined);
      expect(await runCommand(spec, {}, [...argv], main)).toBe(ExitCode.usage);
      expect(main).not.toHaveBeenCalled();
      expect(io.stderrLines()).toHaveLength(1);
      expect(io.stderrLines()[0]).toMatch(new RegExp(`^tool run: .*${flag}.*\\(see tool run --help\\)$`));
      vi.restoreAllMocks();
    }
  });
  it('a usage error found by the command is one line too, keeping a useful hint', async () => {
    const io = capture();
    const code = await runCommand(spec, {}, [], async () => {
      throw new UsageError('--name is required', 'names are lower case');
    });
    expect(code).toBe(ExitCode.usage);
    expect(io.stderrLines()).toEqual(['tool run: --name is required; names are lower case (see tool run --help)']);
  });
  it('other task errors keep their exit code and print no stack', async () => {
    const io = capture();
    const code = await runCommand(spec, {}, [], async () => {
      throw new TaskError('disk is gone', { exitCode: ExitCode.environment });
    });
    expect(code).toBe(ExitCode.environment);
    expect(io.stderrLines().join('\n')).toContain('disk is gone');
    expect(io.stderrLines().join('\n')).not.toMatch(/\n\s+at /);
  });
  it('--help prints usage, options and the examples on stdout', async () => {
    const io = capture();
    expect(await runCommand(spec, { name: 'the name' }, ['--help'], async () => 7)).toBe(ExitCode.ok);
    expect(io.stdout()).toMatch(/^tool run — does a thing\n\nUsage: tool run --name X\n/);
    expect(io.stdout()).toContain('--name <value>');
    expect(io.stdout()).toMatch(/Examples:\n {2}tool run --name x\n$/);
  });
});

describe('runSubcommands', () => {
  it('an unknown command or a flag in its place: exit 2 and one line', async () => {
    for (const sub of ['nope', '--bogus']) {
      const io = capture();
      const run = vi.fn(async () => 0);
      expect(await runSubcommands('tool', 'a tool', { run: { summary: 's', run } }, [sub])).toBe(ExitCode.usage);
      expect(run).not.toHaveBeenCalled();
      expect(io.stderrLines()).toEqual([`tool: unknown command "${sub}" (see tool --help)`]);
      vi.restoreAllMocks();
    }
  });
});
