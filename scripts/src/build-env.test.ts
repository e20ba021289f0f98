import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import dotenv from 'dotenv';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { variableByName } from '@slm-copilot/context-schema';
import { CATALOG, DEFAULT_MODEL_ID } from '@slm-copilot/model-fetch';
import { ExitCode, TaskError } from '@slm-copilot/task-kit';
import {
  BUILD_ENGINES,
  BUILD_VAR_ORDER,
  BUILD_VARS,
  collectBuildEnv,
  DEFAULT_BUILD_SETTINGS,
  formatIssue,
  quoteEnvValue,
  readBuildEnv,
  renderEnvFile,
  type BuildSettings,
} from './build-env.js';

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'build-env-'));
  file = path.join(dir, '.env');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const thrown = (fn: () => unknown): TaskError => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TaskError);
    return error as TaskError;
  }
  throw new Error('expected a TaskError');
};

describe('the build settings contract', () => {
  it('has the documented defaults, shared with the context schema and the model catalog', () => {
    expect(DEFAULT_BUILD_SETTINGS).toEqual({
      profile: 'production',
      model: DEFAULT_MODEL_ID,
      engine: 'localai',
      contextSize: 65536,
      outputDir: './output',
      mirror: undefined,
      cache: '~/.cache/slm-copilot',
    });
    const ctx = variableByName.get('ONEAPP_COPILOT_CONTEXT_SIZE')!;
    expect([ctx.default, ctx.minimum, ctx.maximum]).toEqual([65536, 2048, 262144]);
    expect([...BUILD_ENGINES]).toEqual(variableByName.get('ONEAPP_COPILOT_ENGINE')!.enum);
    expect(BUILD_VARS.model.choices).toEqual(CATALOG.map((e) => e.id));
    expect(BUILD_VAR_ORDER.map((k) => BUILD_VARS[k].name)).toEqual([
      'SLM_COPILOT_PROFILE',
      'SLM_COPILOT_MODEL',
      'SLM_COPILOT_ENGINE',
      'SLM_COPILOT_CONTEXT_SIZE',
      'SLM_COPILOT_OUTPUT_DIR',
      'SLM_COPILOT_MIRROR',
      'SLM_COPILOT_CACHE',
    ]);
  });
});

describe('readBuildEnv', () => {
  it('returns the defaults when there is no file and no variable, with absolute paths', () => {
    const env = readBuildEnv({ file, env: { HOME: '/home/builder' } });
    expect(env).toMatchObject({ ...DEFAULT_BUILD_SETTINGS, fileExists: false, file, extra: {} });
    expect(env.modelEntry.id).toBe(DEFAULT_MODEL_ID);
    expect(env.resolved.outputDir).toBe(path.join(dir, 'output'));
    expect(env.resolved.cache).toMatch(/\/\.cache\/slm-copilot$/);
    expect(env.resolved.mirror).toBeUndefined();
    expect(Object.values(env.sources).every((s) => s === 'default')).toBe(true);
  });

  it('lets flags win over the environment, and the environment over the file', async () => {
    await writeFile(
      file,
      'SLM_COPILOT_PROFILE=offline\nSLM_COPILOT_MIRROR=./mirror\nSLM_COPILOT_ENGINE=llama-server\n' +
        'SLM_COPILOT_CONTEXT_SIZE=8192\nOTHER=x\n',
    );
    const realEnv = { SLM_COPILOT_ENGINE: 'localai', SLM_COPILOT_CONTEXT_SIZE: '16384', SLM_COPILOT_OUTPUT_DIR: '' };
    const env = readBuildEnv({ file, env: realEnv, flags: { contextSize: '65536', model: undefined } });
    expect(env.profile).toBe('offline');
    expect(env.engine).toBe('localai');
    expect(env.contextSize).toBe(65536);
    expect(env.outputDir).toBe('./output'); // empty counts as not set
    expect(env.sources).toMatchObject({
      profile: 'file',
      engine: 'env',
      contextSize: 'flag',
      outputDir: 'default',
      mirror: 'file',
    });
    expect(env.resolved.mirror).toBe(path.join(dir, 'mirror'));
    expect(env.extra).toEqual({ OTHER: 'x' });
    // dotenv never touched the real environment object
    expect(realEnv).toEqual({
      SLM_COPILOT_ENGINE: 'localai',
      SLM_COPILOT_CONTEXT_SIZE: '16384',
      SLM_COPILOT_OUTPUT_DIR: '',
    });
  });

  it('never writes into process.env', async () => {
    await writeFile(file, 'SLM_COPILOT_TEST_ONLY_MARKER=1\n');
    readBuildEnv({ file, env: {} });
    expect(process.env.SLM_COPILOT_TEST_ONLY_MARKER).toBeUndefined();
  });

  it('names each bad variable, its value, where it came from and what is expected', async () => {
    await writeFile(file, 'SLM_COPILOT_PROFILE=staging\nSLM_COPILOT_MODEL=gpt-5\n');
    const error = thrown(() =>
      readBuildEnv({
        file,
        env: { SLM_COPILOT_ENGINE: 'vllm' },
        flags: { contextSize: '12', mirror: 'ftp://mirror.example' },
      }),
    );
    expect(error.exitCode).toBe(ExitCode.invalidConfig);
    expect(error.message).toContain(`SLM_COPILOT_PROFILE="staging" (in ${file}): expected production, offline or test`);
    expect(error.message).toContain(
      `SLM_COPILOT_MODEL="gpt-5" (in ${file}): expected a catalog model id: ${CATALOG.map((e) => e.id).join(', ')}`,
    );
    expect(error.message).toContain(
      'SLM_COPILOT_ENGINE="vllm" (from the environment): expected localai or llama-server',
    );
    expect(error.message).toContain(
      '--context-size "12" (SLM_COPILOT_CONTEXT_SIZE): expected an integer from 2048 to 262144',
    );
    expect(error.message).toContain(
      '--mirror "ftp://mirror.example" (SLM_COPILOT_MIRROR): expected a local directory or an http(s):// base URL',
    );
  });

  it('refuses out-of-range and malformed numbers and URLs, and accepts the bounds', () => {
    for (const bad of ['2047', '262145', '32k', '-1', '1e4', '0x8000']) {
      expect(collectBuildEnv({ file, env: {}, flags: { contextSize: bad } }).issues.map((i) => i.key)).toEqual([
        'contextSize',
      ]);
    }
    for (const good of ['2048', '262144', ' 4096 ']) {
      expect(collectBuildEnv({ file, env: {}, flags: { contextSize: good } }).issues).toEqual([]);
    }
    for (const bad of [
      'http://',
      'https://m.example/a?x=1',
      'https://m.example/#f',
      'file:///srv/mirror',
      "/srv/it's",
    ]) {
      expect(collectBuildEnv({ file, env: {}, flags: { mirror: bad } }).issues.map((i) => i.key)).toEqual(['mirror']);
    }
    for (const good of ['https://mirror.example/slm', 'http://127.0.0.1:8080', '/srv/mirror', 'mirror dir']) {
      expect(collectBuildEnv({ file, env: {}, flags: { mirror: good } }).issues).toEqual([]);
    }
  });

  it("takes an empty flag as a value: no mirror for --mirror '', refused elsewhere", async () => {
    await writeFile(file, 'SLM_COPILOT_MIRROR=/srv/m\n');
    const read = collectBuildEnv({ file, env: {}, flags: { mirror: '' } });
    expect(read.settings.mirror).toBeUndefined();
    expect(read.sources.mirror).toBe('flag');
    expect(collectBuildEnv({ file, env: {}, flags: { engine: '' } }).issues.map(formatIssue)).toEqual([
      '--engine "" (SLM_COPILOT_ENGINE): expected localai or llama-server',
    ]);
  });

  it('requires a mirror for offline only (test makes its inputs here); a flag error is a one-line usage error', () => {
    expect(readBuildEnv({ file, env: {}, flags: { profile: 'test' } }).mirror).toBeUndefined();
    for (const profile of ['offline']) {
      const error = thrown(() => readBuildEnv({ file, env: {}, flags: { profile } }));
      expect(error.exitCode).toBe(ExitCode.usage); // the flag asked for it
      expect(thrown(() => readBuildEnv({ file, env: { SLM_COPILOT_PROFILE: profile } })).exitCode).toBe(
        ExitCode.invalidConfig,
      );
      expect(error.message).toContain(
        `SLM_COPILOT_MIRROR (--mirror) is not set: expected a local directory or an http(s):// base URL (no query or fragment): the ${profile} profile fetches only from the mirror`,
      );
      expect(
        readBuildEnv({ file, env: {}, flags: { profile, mirror: 'https://mirror.example' } }).resolved.mirror,
      ).toBe('https://mirror.example');
    }
    const bad = thrown(() => readBuildEnv({ file, env: {}, flags: { engine: 'vllm', contextSize: '1' } }));
    expect(bad.exitCode).toBe(ExitCode.usage);
    // a usage error is one line, naming every bad flag, its value and what is expected
    expect(bad.message.split('\n')).toHaveLength(1);
    expect(bad.hint).toBeUndefined();
    expect(bad.message).toBe(
      '--engine "vllm" (SLM_COPILOT_ENGINE): expected localai or llama-server; ' +
        '--context-size "1" (SLM_COPILOT_CONTEXT_SIZE): expected an integer from 2048 to 262144',
    );
  });

  it('keeps valid values and reports the bad ones without throwing (collectBuildEnv)', async () => {
    await writeFile(file, 'SLM_COPILOT_PROFILE=test\nSLM_COPILOT_MIRROR=/srv/m\nSLM_COPILOT_CONTEXT_SIZE=huge\n');
    const read = collectBuildEnv({ file, env: {} });
    expect(read.settings).toMatchObject({ profile: 'test', mirror: '/srv/m', contextSize: 65536 });
    expect(read.issues.map((i) => [i.name, i.value, i.source])).toEqual([['SLM_COPILOT_CONTEXT_SIZE', 'huge', 'file']]);
    expect(read.fileValues).toEqual({ profile: 'test', mirror: '/srv/m', contextSize: 'huge' });
  });

  it('reports an unreadable file as a TaskError', async () => {
    await mkdir(file); // a directory named .env
    const error = thrown(() => readBuildEnv({ file, env: {} }));
    expect(error.message).toContain(`cannot read ${file}`);
    expect(error.exitCode).toBe(ExitCode.environment);
  });
});

describe('renderEnvFile', () => {
  const settings: BuildSettings = {
    profile: 'test',
    model: 'qwen2.5-coder-3b',
    engine: 'llama-server',
    contextSize: 4096,
    outputDir: '/srv/out #1',
    mirror: 'https://mirror.example/slm',
    cache: '/var/cache/slm',
  };

  it('writes every variable in a stable order with a comment, and reads back to the same settings', async () => {
    const text = renderEnvFile(settings);
    const names = [...text.matchAll(/^(SLM_COPILOT_[A-Z_]+)=/gm)].map((m) => m[1]);
    expect(names).toEqual(BUILD_VAR_ORDER.map((k) => BUILD_VARS[k].name));
    for (const name of names) expect(text).toMatch(new RegExp(`^# .*\\n${name}=`, 'm'));
    expect(text).toContain("SLM_COPILOT_OUTPUT_DIR='/srv/out #1'");
    expect(text).toContain('SLM_COPILOT_CONTEXT_SIZE=4096');
    expect(renderEnvFile(settings)).toBe(text);
    await writeFile(file, text);
    const back = readBuildEnv({ file, env: {} });
    expect(Object.fromEntries(BUILD_VAR_ORDER.map((k) => [k, back[k]]))).toEqual(settings);
  });

  it('writes the defaults with an empty mirror, and keeps extra variables at the end', () => {
    const text = renderEnvFile(DEFAULT_BUILD_SETTINGS, { extra: { HTTP_PROXY: 'http://proxy:3128', NOTE: 'a # b' } });
    expect(text).toContain('\nSLM_COPILOT_MIRROR=\n');
    expect(text).toContain('\nSLM_COPILOT_PROFILE=production\n');
    expect(text.trimEnd().split('\n').slice(-2)).toEqual(['HTTP_PROXY=http://proxy:3128', "NOTE='a # b'"]);
    expect(dotenv.parse(text)).toMatchObject({ SLM_COPILOT_MIRROR: '', HTTP_PROXY: 'http://proxy:3128' });
  });

  it('refuses to write an invalid value', () => {
    expect(() => renderEnvFile({ ...settings, contextSize: 12 })).toThrow(
      /SLM_COPILOT_CONTEXT_SIZE="12": expected an integer from 2048 to 262144/,
    );
  });

  it('quotes values so that dotenv reads them back exactly', () => {
    for (const value of ['plain', 'a b', 'a#b', "it's", 'say "hi"', 'x=y', '', 'multi\nline']) {
      expect(dotenv.parse(`K=${quoteEnvValue(value)}\n`).K).toBe(value);
    }
    expect(() => quoteEnvValue(`both ' and "`)).toThrow(TaskError);
  });
});
