import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { appliancePaths, parseContext } from '@slm-copilot/context-schema';
import { generateApiKey } from '@slm-copilot/task-kit';
import { nonEmptyLines, packageCli } from '@slm-copilot/task-kit/test-support/cli';

const cli = packageCli(import.meta.url);

const lines = nonEmptyLines;

describe('report-writer CLI', () => {
  it('usage errors exit 2 with one line on stderr naming the flag', async () => {
    for (const [args, flag] of [
      [['onegate'], '--data'],
      [['onegate', '--data', 'novalue'], '--data'],
      [['onegate', '--bogus'], '--bogus'],
      [['render'], '--inputs'],
      [['render', '--bogus'], '--bogus'],
    ] as const) {
      const r = await cli([...args]);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(lines(r.stderr), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toContain(flag);
    }
  }, 120_000);

  it('every command has --help with examples', async () => {
    for (const command of ['render', 'onegate']) {
      const r = await cli([command, '--help']);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/Examples:\n {2}report-writer /);
    }
  }, 60_000);

  it('render --root writes the report (0600) and the banner under the root', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'report-cli-'));
    const key = generateApiKey();
    const inputs = {
      config: parseContext({ ONEAPP_COPILOT_PASSWORD: key }),
      apiKey: key,
      generatedKeyFile: null,
      host: '192.0.2.10',
      engine: { name: 'llama-server', version: 'v', threads: 2, contextPerSlot: 4096, parallelSlots: 1 },
      tls: {
        mode: 'letsencrypt',
        caCertPath: null,
        caFingerprintSha256: null,
        certFingerprintSha256: 'AA',
        notAfter: '',
      },
      warnings: [],
      errors: [],
      generatedAt: '2026-11-28T00:00:00Z',
    };
    const file = path.join(root, 'inputs.json');
    await writeFile(file, JSON.stringify(inputs));
    const r = await cli(['render', '--inputs', file, '--root', root]);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = path.join(root, appliancePaths().reportFile);
    expect(await readFile(report, 'utf8')).toContain(`api_key = ${key}`);
    expect((await stat(report)).mode & 0o777).toBe(0o600);
    expect(r.stderr).not.toContain(key);
  }, 60_000);

  it('onegate --context-file finds ONEGATE_ENDPOINT in the context (a FAKE onegate records the call)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'report-cli-onegate-'));
    await writeFile(
      path.join(dir, 'onegate'),
      `#!/bin/sh\n# FAKE onegate for tests\necho "$ONEGATE_ENDPOINT $@" > ${dir}/args\n`,
      {
        mode: 0o755,
      },
    );
    const context = path.join(dir, 'context.sh');
    await writeFile(context, "ONEGATE_ENDPOINT='http://169.254.16.9:5030'\n");
    const r = await cli(['onegate', '--data', 'ONEAPP_COPILOT_MODEL_ID=m', '--context-file', context], {
      PATH: `${dir}:${process.env.PATH}`,
      ONEGATE_ENDPOINT: '',
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await readFile(path.join(dir, 'args'), 'utf8')).trim()).toBe(
      'http://169.254.16.9:5030 vm update --data ONEAPP_COPILOT_MODEL_ID=m',
    );
  }, 60_000);
});
