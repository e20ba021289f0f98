import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildManifest, writeManifest } from '@slm-copilot/model-fetch';
import { ggufHeader } from '@slm-copilot/model-fetch/test-support';
import { nonEmptyLines, packageCli } from '@slm-copilot/task-kit/test-support/cli';

const cli = packageCli(import.meta.url);
const lines = nonEmptyLines;
const COMMANDS = ['plan', 'render', 'localai', 'llama-server'];

describe('localai-install CLI', () => {
  it('every command has --help with examples', async () => {
    const runs = await Promise.all(COMMANDS.map((c) => cli([c, '--help'])));
    for (const [i, c] of COMMANDS.entries()) {
      expect(runs[i]!.exitCode, c).toBe(0);
      expect(runs[i]!.stdout, c).toContain(`Usage: localai-install ${c}`);
      expect(runs[i]!.stdout, c).toMatch(/Examples:\n {2}localai-install /);
    }
  }, 60_000);

  it('usage errors (unknown, old, missing flags): exit 2, one stderr line naming the flag, no write', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'localai-install-cli-'));
    const model = path.join(root, 'no-manifest.gguf');
    await writeFile(model, 'GGUF');
    const cases: Array<[string[], string]> = [
      [['--bogus'], '--bogus'],
      ...COMMANDS.map((c): [string[], string] => [[c, '--bogus'], '--bogus']),
      [['render', '--file', 'context.sh', '--model', model], '--file'],
      [['localai', '--prefix', root], '--prefix'],
      [['plan'], '--model'],
      [['render', '--root', root], '--model'],
      [['llama-server', '--root', root], '--from'],
      [['render', '--model', model, '--root', root], '--model'],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(args)));
    for (const [i, [args, flag]] of cases.entries()) {
      const r = runs[i]!;
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(lines(r.stderr), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toContain(flag);
      expect(r.stdout, args.join(' ')).toBe('');
    }
    expect(await readdir(root)).toEqual(['no-manifest.gguf']);
  }, 120_000);

  it('an unreadable --context-file is an environment error naming the file, and nothing is written', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'localai-install-cli-'));
    const models = await mkdtemp(path.join(tmpdir(), 'localai-install-model-'));
    const model = path.join(models, 'm.gguf');
    await writeFile(model, ggufHeader());
    await writeManifest(model, await buildManifest(model));
    const missing = path.join(models, 'missing-context.sh');
    const r = await cli(['render', '--model', model, '--context-file', missing, '--root', root]);
    expect(r.exitCode).toBe(4);
    expect(r.stderr).toContain(missing);
    expect(await readdir(root)).toEqual([]);
  }, 60_000);
});
