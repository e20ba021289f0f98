import { describe, expect, it } from 'vitest';
import { appliancePaths, parseContext } from '@slm-copilot/context-schema';
import { contractViolations, loadContracts, yamlKeyPaths } from '../test-support/contract.js';
import { devstralFacts, vm16x32 } from '../test-support/fixtures.js';
import { llamaServerArgs } from './llama-server.js';
import { localAiEnv, localAiModel } from './localai.js';
import { planEngine } from './plan.js';
import { LOCALAI_VERSION } from './versions.js';

const paths = appliancePaths();
const contracts = loadContracts();

function renderAll(env: Record<string, string>) {
  const config = parseContext(env);
  const plan = planEngine(config, devstralFacts, vm16x32);
  return {
    modelYaml: localAiModel(config, plan, devstralFacts, paths),
    localaiEnv: localAiEnv(config, plan, paths),
    // with the saved prompt cache's directory, as rendered when it persists
    llamaServerArgs: llamaServerArgs(config, plan, devstralFacts, paths, '/var/lib/slm-copilot-engine/slot-cache/x'),
  };
}

describe('engine contract (facts from the pinned sources)', () => {
  it('the contract file is the pinned version', () => {
    expect(contracts.localaiTag).toBe(LOCALAI_VERSION);
  });

  for (const [name, env] of [
    ['defaults', {}],
    [
      'metrics off, 4 slots, explicit threads',
      {
        ONEAPP_COPILOT_METRICS: 'NO',
        ONEAPP_COPILOT_PARALLEL: '4',
        ONEAPP_COPILOT_THREADS: '6',
        ONEAPP_COPILOT_CONTEXT_SIZE: '8192',
      },
    ],
    ['a quantized KV cache', { ONEAPP_COPILOT_KV_CACHE_TYPE: 'q8_0' }],
  ] as const) {
    it(`everything we write is read by the engine: ${name}`, () => {
      expect(contractViolations(contracts, renderAll(env))).toEqual([]);
    });
  }

  it('catches a key, option, env name or flag the engine would silently ignore (mutation check)', () => {
    const r = renderAll({});
    const broken = {
      modelYaml: {
        ...r.modelYaml,
        mlock: true,
        use_jinja: true,
        options: [...(r.modelYaml.options as string[]), 'jinja_template:x', '--no-such-flag:1'],
      },
      localaiEnv: { ...r.localaiEnv, LOCALAI_TELEMETRY: 'false' },
      llamaServerArgs: [...r.llamaServerArgs, '--webui-off'],
    };
    expect(contractViolations(contracts, broken)).toEqual([
      'model YAML key "mlock" is not read by LocalAI v4.9.0',
      'model YAML key "use_jinja" is not read by LocalAI v4.9.0',
      'backend option "jinja_template" is not parsed by LocalAI\'s llama-cpp backend',
      'passthrough option "--no-such-flag:1" is not a llama.cpp flag',
      'environment variable LOCALAI_TELEMETRY is not read by local-ai run',
      'llama-server flag --webui-off does not exist',
    ]);
  });

  it('yamlKeyPaths flattens nested keys', () => {
    expect(yamlKeyPaths({ a: 1, b: { c: [1], d: { e: 'x' } } })).toEqual(['a', 'b.c', 'b.d.e']);
  });
});
