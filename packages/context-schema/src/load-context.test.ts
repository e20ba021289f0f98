import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, ExitCode, TaskError } from '@slm-copilot/task-kit';
import { loadContext } from './load-context.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, log: createLogger({ stream, color: false, timestamps: false }) };
}

const saved = { ...process.env };
afterEach(() => {
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
});

describe('loadContext (the one context loader)', () => {
  it('refuses an unreadable file with a TaskError naming it, exit code environment', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'load-ctx-')), 'missing.sh');
    const error = await loadContext(file, capture().log).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TaskError);
    expect((error as TaskError).exitCode).toBe(ExitCode.environment);
    expect((error as TaskError).message).toContain(file);
  });

  it("reads a context.sh, logs the reader's warnings naming the file, keeps the non-context environment", async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'load-ctx-')), 'context.sh');
    await writeFile(file, "ONEAPP_COPILOT_THREADS='4'\nONEGATE_ENDPOINT='http://192.0.2.1:5030'\necho hi\n");
    process.env.SOME_OTHER_VARIABLE = 'kept';
    process.env.ONEAPP_COPILOT_PARALLEL = '9'; // not in the file: the file is the whole context
    const { lines, log } = capture();
    const env = await loadContext(file, log);
    expect(env.ONEAPP_COPILOT_THREADS).toBe('4');
    expect(env.ONEGATE_ENDPOINT).toBe('http://192.0.2.1:5030');
    expect(env.SOME_OTHER_VARIABLE).toBe('kept');
    expect(env.ONEAPP_COPILOT_PARALLEL).toBeUndefined();
    expect(lines.join('')).toContain(`WARN  ${file}: line 3: not an assignment, ignored`);
    expect(lines.join('')).toContain(`1 ONEAPP_COPILOT_* variable(s) from ${file}`);
  });

  it('without a file, the environment is the context', async () => {
    process.env.ONEAPP_COPILOT_THREADS = '3';
    const env = await loadContext(undefined, capture().log);
    expect(env.ONEAPP_COPILOT_THREADS).toBe('3');
  });
});
