import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { appliancePaths, parseContext } from '@slm-copilot/context-schema';
import { startOneGateDouble } from '@slm-copilot/onegate/test-support/onegate-double';
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

  it('onegate --context-file: OneGate found through the context, one PUT /vm (the OneGate double)', async () => {
    const og = await startOneGateDouble();
    try {
      const vm = og.addVm();
      const dir = await mkdtemp(path.join(tmpdir(), 'report-cli-onegate-'));
      const context = path.join(dir, 'context.sh');
      const ctx = og.contextOf(vm);
      await writeFile(
        context,
        Object.entries(ctx)
          .map(([k, v]) => `${k}='${v}'\n`)
          .join(''),
      );
      const r = await cli(['onegate', '--data', 'ONEAPP_COPILOT_MODEL_ID=m', '--context-file', context], {
        ONEGATE_ENDPOINT: '',
      });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(og.requests.map((q) => [q.method, q.path, q.body])).toEqual([
        ['PUT', '/vm', 'data=ONEAPP_COPILOT_MODEL_ID%3Dm&type=1'],
      ]);
      expect(vm.userTemplate).toEqual({ ONEAPP_COPILOT_MODEL_ID: 'm' });
      expect(r.stderr).toContain(`published to OneGate (VM ${vm.id}): ONEAPP_COPILOT_MODEL_ID`);
      expect(r.stderr).not.toContain(vm.token);
    } finally {
      await og.close();
    }
  }, 60_000);

  it('onegate without OneGate in the context: one line naming what is missing, exit 0', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'report-cli-onegate-'));
    const context = path.join(dir, 'context.sh');
    await writeFile(context, "ONEAPP_COPILOT_MODEL_ID='m'\n");
    const r = await cli(['onegate', '--data', 'ONEAPP_COPILOT_MODEL_ID=m', '--context-file', context], {
      ONEGATE_ENDPOINT: '',
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(lines(r.stderr).filter((l) => l.includes('OneGate'))).toEqual([
      expect.stringMatching(/OneGate not configured: no ONEGATE_ENDPOINT in the context/),
    ]);
  }, 60_000);
});
