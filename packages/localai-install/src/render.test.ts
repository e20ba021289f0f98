import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { appliancePaths, parseContext } from '@slm-copilot/context-schema';
import { applyFileSet, changedPaths, writeFileAtomic } from '@slm-copilot/task-kit';
import { $ } from 'zx';
import { devstralFacts, vm16x32 } from '../test-support/fixtures.js';
import { loadChatTemplate, renderEngine } from './render.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
const paths = appliancePaths();
/** The saved prompt cache's id the lifecycle would mint (random there; fixed here for exact output). */
const CACHE_ID = '0123456789abcdef0123456789abcdef';

async function renderInto(engine: 'localai' | 'llama-server', context: Record<string, string> = {}) {
  const root = await mkdtemp(path.join(tmpdir(), `engine-${engine}-`));
  const config = parseContext({ ONEAPP_COPILOT_ENGINE: engine, ...context });
  const render = renderEngine({
    config,
    model: devstralFacts,
    host: vm16x32,
    paths,
    chatTemplate: await loadChatTemplate(),
    slotCacheId: CACHE_ID,
  });
  const applied = await applyFileSet(root, render.files);
  return { root, render, applied };
}

/** Compares a rendered file with its reviewed copy under fixtures/ (UPDATE_FIXTURES=1 rewrites them). */
async function expectFixture(actual: string, name: string) {
  const file = path.join(fixtures, name);
  if (process.env.UPDATE_FIXTURES === '1') await writeFileAtomic(file, actual);
  expect(actual).toBe(await readFile(file, 'utf8'));
}

describe('engine render (exact output)', () => {
  it('LocalAI: model YAML, env file, unit and template at the appliance paths', async () => {
    const { root, render, applied } = await renderInto('localai');
    expect(applied.map((a) => a.path)).toEqual([
      '/etc/slm-copilot/devstral-chat-template.jinja',
      '/opt/slm-copilot/models/devstral-small-2.yaml',
      '/etc/slm-copilot/engine.env',
      '/etc/systemd/system/slm-copilot-engine.service',
    ]);
    expect(render.unit).toBe('slm-copilot-engine.service');
    await expectFixture(
      await readFile(path.join(root, 'opt/slm-copilot/models/devstral-small-2.yaml'), 'utf8'),
      'localai/devstral-small-2.yaml',
    );
    await expectFixture(await readFile(path.join(root, 'etc/slm-copilot/engine.env'), 'utf8'), 'localai/engine.env');
    await expectFixture(
      await readFile(path.join(root, 'etc/systemd/system/slm-copilot-engine.service'), 'utf8'),
      'localai/slm-copilot-engine.service',
    );
  });

  it('llama-server: one unit carrying the whole command line, and the prompt-cache unit', async () => {
    const { root, applied, render } = await renderInto('llama-server');
    expect(applied.map((a) => a.path)).toEqual([
      '/etc/slm-copilot/devstral-chat-template.jinja',
      '/etc/systemd/system/slm-copilot-engine.service',
      '/etc/systemd/system/slm-copilot-engine-cache.service',
    ]);
    expect(render.remove).toEqual([]);
    await expectFixture(
      await readFile(path.join(root, 'etc/systemd/system/slm-copilot-engine.service'), 'utf8'),
      'llama-server/slm-copilot-engine.service',
    );
    await expectFixture(
      await readFile(path.join(root, 'etc/systemd/system/slm-copilot-engine-cache.service'), 'utf8'),
      'llama-server/slm-copilot-engine-cache.service',
    );
  });

  it('PROMPT_CACHE_PERSIST=NO (or no id): no --slot-save-path, no cache unit, and it is removed', async () => {
    const fixture = await readFile(path.join(fixtures, 'llama-server/slm-copilot-engine.service'), 'utf8');
    const dir = `/var/lib/slm-copilot-engine/slot-cache/${CACHE_ID}`;
    const withoutCache = fixture
      .replace(` --slot-save-path ${dir}`, '')
      .replace('Wants=slm-copilot-engine-cache.service\n', '')
      .replace(`ExecStartPre=/bin/mkdir -p -m 0700 ${dir}\n`, '')
      .replace('StateDirectoryMode=0700\n', '');
    expect(withoutCache).not.toBe(fixture);
    const off = await renderInto('llama-server', { ONEAPP_COPILOT_PROMPT_CACHE_PERSIST: 'NO' });
    const noId = renderEngine({
      config: parseContext({ ONEAPP_COPILOT_ENGINE: 'llama-server' }),
      model: devstralFacts,
      host: vm16x32,
      paths,
      chatTemplate: await loadChatTemplate(),
    });
    for (const r of [off.render, noId]) {
      expect(r.files.map((f) => f.path)).not.toContain('/etc/systemd/system/slm-copilot-engine-cache.service');
      expect(r.files.find((f) => f.path.endsWith('/slm-copilot-engine.service'))!.text).toBe(withoutCache);
      expect(r.remove).toEqual(['/etc/systemd/system/slm-copilot-engine-cache.service']);
    }
    // LocalAI has no equivalent: nothing rendered, the unit removed
    const localai = await renderInto('localai');
    expect(localai.render.remove).toEqual(['/etc/systemd/system/slm-copilot-engine-cache.service']);
  });

  it('ONEAPP_COPILOT_MAX_TOKENS: --n-predict / parameters.max_tokens, left out entirely for 0 (no cap)', async () => {
    const unit = 'etc/systemd/system/slm-copilot-engine.service';
    const yaml = 'opt/slm-copilot/models/devstral-small-2.yaml';
    const fixture = {
      unit: await readFile(path.join(fixtures, 'llama-server/slm-copilot-engine.service'), 'utf8'),
      yaml: await readFile(path.join(fixtures, 'localai/devstral-small-2.yaml'), 'utf8'),
    };
    // the reviewed fixtures carry the default, 8192
    expect(fixture.unit).toContain(' --flash-attn on --n-predict 8192 --threads 8 ');
    expect(fixture.yaml).toContain('  temperature: 0.15\n  max_tokens: 8192\ncontext_size: 65536\n');
    for (const [value, flag, key] of [
      ['16', ' --n-predict 16', '  max_tokens: 16\n'],
      ['262144', ' --n-predict 262144', '  max_tokens: 262144\n'],
      ['0', '', ''],
    ] as const) {
      const context = { ONEAPP_COPILOT_MAX_TOKENS: value };
      const llama = await renderInto('llama-server', context);
      expect(await readFile(path.join(llama.root, unit), 'utf8'), value).toBe(
        fixture.unit.replace(' --n-predict 8192', flag),
      );
      const localai = await renderInto('localai', context);
      expect(await readFile(path.join(localai.root, yaml), 'utf8'), value).toBe(
        fixture.yaml.replace('  max_tokens: 8192\n', key),
      );
    }
  });

  it('ONEAPP_COPILOT_KV_CACHE_TYPE: --cache-type-k/-v, cache_type_k/v, flash attention on', async () => {
    const unit = 'etc/systemd/system/slm-copilot-engine.service';
    const yaml = 'opt/slm-copilot/models/devstral-small-2.yaml';
    const fixture = {
      unit: await readFile(path.join(fixtures, 'llama-server/slm-copilot-engine.service'), 'utf8'),
      yaml: await readFile(path.join(fixtures, 'localai/devstral-small-2.yaml'), 'utf8'),
    };
    // the reviewed fixtures carry the default type, f16, and flash attention on
    const f16Cache = renderEngine({
      config: parseContext({}),
      model: devstralFacts,
      host: vm16x32,
      paths,
      chatTemplate: '',
    }).plan.promptCacheMiB;
    expect(fixture.unit).toContain(' --parallel 1 --cache-type-k f16 --cache-type-v f16 --flash-attn on --n-predict ');
    expect(fixture.unit).toContain(` --cache-ram ${f16Cache} `);
    expect(fixture.yaml).toContain('\ncache_type_k: f16\ncache_type_v: f16\nflash_attention: enabled\n');
    expect(fixture.yaml).toContain(`  - cache_ram:${f16Cache}\n`);
    for (const type of ['q8_0', 'q4_0'] as const) {
      const context = { ONEAPP_COPILOT_KV_CACHE_TYPE: type };
      const llama = await renderInto('llama-server', context);
      // the prompt cache is sized by the plan for the type (q8_0: the 8 GiB cap; q4_0: 2 contexts)
      const cache = llama.render.plan.promptCacheMiB;
      expect(cache).not.toBe(f16Cache);
      expect(await readFile(path.join(llama.root, unit), 'utf8'), type).toBe(
        fixture.unit
          .replace('--cache-type-k f16 --cache-type-v f16', `--cache-type-k ${type} --cache-type-v ${type}`)
          .replace(`--cache-ram ${f16Cache} `, `--cache-ram ${cache} `),
      );
      const localai = await renderInto('localai', context);
      expect(await readFile(path.join(localai.root, yaml), 'utf8'), type).toBe(
        fixture.yaml
          .replace('cache_type_k: f16\ncache_type_v: f16\n', `cache_type_k: ${type}\ncache_type_v: ${type}\n`)
          .replace(`cache_ram:${f16Cache}\n`, `cache_ram:${cache}\n`),
      );
    }
  });

  it('is idempotent: rendering the same inputs again changes nothing', async () => {
    const { root } = await renderInto('localai');
    const config = parseContext({ ONEAPP_COPILOT_ENGINE: 'localai' });
    const again = renderEngine({
      config,
      model: devstralFacts,
      host: vm16x32,
      paths,
      chatTemplate: await loadChatTemplate(),
    });
    expect(changedPaths(await applyFileSet(root, again.files))).toEqual([]);
    const other = renderEngine({
      config: parseContext({ ONEAPP_COPILOT_CONTEXT_SIZE: '16384' }),
      model: devstralFacts,
      host: vm16x32,
      paths,
      chatTemplate: await loadChatTemplate(),
    });
    expect(changedPaths(await applyFileSet(root, other.files))).toEqual([
      '/opt/slm-copilot/models/devstral-small-2.yaml',
      '/etc/slm-copilot/engine.env',
    ]);
  });

  it('switching engines rewrites the one engine unit (no second unit can be left running)', async () => {
    const { root } = await renderInto('localai');
    const before = await readFile(path.join(root, 'etc/systemd/system/slm-copilot-engine.service'), 'utf8');
    const switched = renderEngine({
      config: parseContext({ ONEAPP_COPILOT_ENGINE: 'llama-server' }),
      model: devstralFacts,
      host: vm16x32,
      paths,
      chatTemplate: await loadChatTemplate(),
      slotCacheId: CACHE_ID,
    });
    expect(changedPaths(await applyFileSet(root, switched.files))).toEqual([
      '/etc/systemd/system/slm-copilot-engine.service',
      '/etc/systemd/system/slm-copilot-engine-cache.service',
    ]);
    const after = await readFile(path.join(root, 'etc/systemd/system/slm-copilot-engine.service'), 'utf8');
    expect(before).toMatch(/ExecStart=\/opt\/local-ai\/bin\/local-ai run/);
    expect(after).toMatch(/ExecStart=\/opt\/llama.cpp\/bin\/llama-server /);
    // besides the one engine unit, only the prompt-cache unit (not an engine: it calls the engine's slot API)
    expect(await readdir(path.join(root, 'etc/systemd/system'))).toEqual([
      'slm-copilot-engine-cache.service',
      'slm-copilot-engine.service',
    ]);
  });

  const ENGINE_UNIT_FILE = 'slm-copilot-engine.service';
  const CACHE_UNIT_FILE = 'slm-copilot-engine-cache.service';

  /** Lines systemd-analyze verify prints about a unit (it exits 0 even for unknown or unparsable keys). */
  async function verifyProblems(unit: string): Promise<string[]> {
    const r = await $({ nothrow: true, quiet: true })`systemd-analyze verify --man=no ${unit}`;
    return (r.stderr + r.stdout)
      .split('\n')
      .filter(
        (l) =>
          l.includes(path.basename(unit)) &&
          !/Failed to (open|create|set up|initialize)|not running|No such file/.test(l),
      );
  }

  async function renderedUnit(engine: 'localai' | 'llama-server', name = ENGINE_UNIT_FILE): Promise<string> {
    const { root } = await renderInto(engine);
    const unit = path.join(root, 'etc/systemd/system', name);
    // verify checks that the commands' binaries exist: point them at a real executable
    const text = (await readFile(unit, 'utf8')).replace(/^(Exec(Start|Stop))=\S+/gm, '$1=/bin/true');
    await writeFileAtomic(unit, text);
    return unit;
  }

  const units = [
    ['localai', ENGINE_UNIT_FILE],
    ['llama-server', ENGINE_UNIT_FILE],
    ['llama-server', CACHE_UNIT_FILE],
  ] as const;

  it('systemd-analyze verify accepts the units, and flags a broken one', async (ctx) => {
    if (!existsSync('/usr/bin/systemd-analyze')) ctx.skip();
    for (const [engine, name] of units) expect(await verifyProblems(await renderedUnit(engine, name))).toEqual([]);
    // mutation check: the same verification must notice a bad value and an unknown key
    for (const [engine, name] of [units[0], units[2]]) {
      const broken = await renderedUnit(engine, name);
      await writeFileAtomic(
        broken,
        (await readFile(broken, 'utf8'))
          .replace('ProtectHome=yes', 'ProtectHome=maybe')
          .replace('[Service]', '[Service]\nBogus=1'),
      );
      expect((await verifyProblems(broken)).length, name).toBe(2);
    }
  }, 60_000);

  it('systemd-analyze security rates the units 2.5 or better (lower is safer)', async (ctx) => {
    if (!existsSync('/usr/bin/systemd-analyze')) ctx.skip();
    for (const [engine, name] of units) {
      const r = await $({
        nothrow: true,
        quiet: true,
      })`systemd-analyze security --offline=yes ${await renderedUnit(engine, name)}`;
      const exposure = Number(
        new RegExp(`Overall exposure level for ${name.replaceAll('.', '\\.')}: ([\\d.]+)`).exec(
          r.stdout + r.stderr,
        )?.[1],
      );
      expect(exposure, `${engine} ${name}`).toBeLessThanOrEqual(2.5);
    }
  }, 60_000);
});
