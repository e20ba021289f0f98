import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TaskError, ExitCode } from '@slm-copilot/task-kit';
import { contractPaths, runStage } from './runner.js';

describe('runStage (the one-apps contract without the framework)', () => {
  it('writes <stage>_started then _success, the stage log and the ready motd', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'runner-'));
    const files = contractPaths(root);
    const seen: string[] = [];
    const code = await runStage('configure', root, async (log) => {
      seen.push((await readFile(files.status, 'utf8')).trim());
      log.info('hello from the stage');
    });
    expect(code).toBe(0);
    expect(seen).toEqual(['configure_started']);
    expect((await readFile(files.status, 'utf8')).trim()).toBe('configure_success');
    expect(await readFile(files.log('configure'), 'utf8')).toMatch(/INFO {2}hello from the stage/);
    expect(await readFile(files.motd, 'utf8')).toMatch(/All set and ready to serve/);
  });

  it('a failing stage: _failure, its exit code, the error in the log and APPLIANCE ERROR in the motd', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'runner-'));
    const files = contractPaths(root);
    const code = await runStage('bootstrap', root, async () => {
      throw new TaskError('ONEAPP_COPILOT_ENGINE = "vllm": expected one of: localai, llama-server', {
        exitCode: ExitCode.invalidConfig,
      });
    });
    expect(code).toBe(ExitCode.invalidConfig);
    expect((await readFile(files.status, 'utf8')).trim()).toBe('bootstrap_failure');
    expect(await readFile(files.log('bootstrap'), 'utf8')).toContain('ONEAPP_COPILOT_ENGINE = "vllm"');
    expect(await readFile(files.motd, 'utf8')).toMatch(/APPLIANCE ERROR/);
  });

  it('stages never overlap (one lock)', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'runner-'));
    const events: string[] = [];
    const stage = (name: 'configure' | 'bootstrap') =>
      runStage(name, root, async () => {
        events.push(`${name}+`);
        await new Promise((r) => setTimeout(r, 200));
        events.push(`${name}-`);
      });
    await Promise.all([stage('configure'), stage('bootstrap')]);
    expect(['configure+configure-bootstrap+bootstrap-', 'bootstrap+bootstrap-configure+configure-']).toContain(
      events.join(''),
    );
  });
});
