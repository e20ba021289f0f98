import { mkdtemp, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageCli } from '@slm-copilot/task-kit/test-support/cli';

const run = packageCli(import.meta.url);
const cli = (...args: string[]) => run(args);

describe('context-schema CLI', () => {
  it('has --help for the tool and every command', async () => {
    for (const args of [
      ['--help'],
      ...['validate', 'docs', 'params', 'marketplace', 'generate'].map((c) => [c, '--help']),
    ]) {
      const r = await cli(...args);
      expect(r.exitCode, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: context-schema/);
      if (args.length > 1) expect(r.stdout, args.join(' ')).toMatch(/Examples:\n {2}context-schema /);
    }
  }, 60_000);

  it('a bogus flag (or the old --file) exits 2 with one line on stderr', async () => {
    for (const args of [
      ['validate', '--bogus'],
      ['validate', '--file', 'context.sh'],
      ['generate', '--bogus'],
    ]) {
      const r = await cli(...args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n').filter(Boolean), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toContain(args[1]);
    }
  }, 60_000);

  it('validate --context-file names an unreadable file, exit 4', async () => {
    const r = await cli('validate', '--context-file', '/nonexistent/context.sh');
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toContain('/nonexistent/context.sh');
  }, 30_000);

  it('validate --context-file refuses a bad context.sh: exit 3, names, secrets masked, nothing run', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ctx-cli-'));
    const marker = path.join(dir, 'ran');
    const secret = 'ThisIsTheSecretKey$(touch x)';
    const file = path.join(dir, 'context.sh');
    await writeFile(
      file,
      [
        `ONEAPP_COPILOT_PASSWORD='${secret}'`,
        `ONEAPP_COPILOT_CONTEXT_SIZE='$(touch ${marker})'`,
        "ONEAPP_COPILOT_ENGINE='llama-server'",
        '',
      ].join('\n'),
    );
    const r = await cli('validate', '--context-file', file);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toContain('ONEAPP_COPILOT_PASSWORD = ');
    expect(r.stderr).toContain(`ONEAPP_COPILOT_CONTEXT_SIZE = "$(touch ${marker})": expected an integer`);
    expect(r.stderr + r.stdout).not.toContain(secret);
    expect(existsSync(marker)).toBe(false);
  }, 30_000);

  it('validate prints the configuration with the key masked', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ctx-cli-'));
    const file = path.join(dir, 'context.sh');
    await writeFile(file, "ONEAPP_COPILOT_PASSWORD='a-valid-api-key-0123456789'\nONEAPP_COPILOT_THREADS='4'\n");
    const r = await cli('validate', '--context-file', file, '--json');
    expect(r.exitCode).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(printed.threads).toBe(4);
    expect(r.stdout).not.toContain('a-valid-api-key-0123456789');
  }, 30_000);
});
