import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { contextDefault, marketplaceInputs, renderDocsTable, renderServiceParams } from './generate.js';
import { renderContextValuesType } from './generate-types.js';
import { ContextError } from './parse.js';
import { expectedGeneratedFiles } from './generated-files.js';
import { variables } from './schema.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

describe('generated files', () => {
  it('the committed README table, params block and marketplace inputs equal freshly generated ones', async () => {
    for (const f of await expectedGeneratedFiles(repoRoot)) {
      expect(
        await readFile(f.path, 'utf8'),
        `${path.relative(repoRoot, f.path)} is stale: run pnpm --filter @slm-copilot/context-schema generate`,
      ).toBe(f.text);
    }
  });

  it('every variable appears in the docs, the params block and the marketplace entries', () => {
    const docs = renderDocsTable();
    const params = renderServiceParams();
    const market = marketplaceInputs();
    for (const v of variables) {
      expect(docs).toContain(`\`${v.name}\``);
      expect(params).toContain(`'${v.name}' '${v.stage}'`);
      expect(market.context[v.name.toLowerCase()]).toBe(`$${v.name}`);
      expect(market.user_inputs[v.name.toLowerCase()]).toMatch(
        new RegExp(`^O\\|${v.hint}\\|.*\\|${contextDefault(v).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`),
      );
    }
    expect(market.inputs_order.split(',')).toEqual(variables.map((v) => v.name));
  });

  it('the params block is valid bash with stride 4', async () => {
    const { $ } = await import('zx');
    const out = await $({ quiet: true })`bash -c ${`${renderServiceParams()}\necho "\${#ONE_SERVICE_PARAMS[@]}"`}`;
    expect(Number(out.stdout.trim())).toBe(variables.length * 4);
  });

  it('the marketplace YAML parses', async () => {
    const text = await readFile(
      path.join(repoRoot, 'packages/context-schema/generated/marketplace-inputs.yaml'),
      'utf8',
    );
    expect(parseYaml(text)).toEqual(marketplaceInputs());
  });

  it("the marketplace inputs take a default in place of the schema's, checked by the schema", () => {
    const plain = marketplaceInputs();
    const built = marketplaceInputs({ ONEAPP_COPILOT_CONTEXT_SIZE: 131072 });
    expect(built.user_inputs.oneapp_copilot_context_size).toMatch(/\|131072$/);
    expect(plain.user_inputs.oneapp_copilot_context_size).not.toMatch(/\|131072$/);
    const { oneapp_copilot_context_size: _a, ...othersBuilt } = built.user_inputs;
    const { oneapp_copilot_context_size: _b, ...othersPlain } = plain.user_inputs;
    expect(othersBuilt).toEqual(othersPlain);
    expect(() => marketplaceInputs({ ONEAPP_COPILOT_CONTEXT_SIZE: 1000 })).toThrow(ContextError);
    expect(() => marketplaceInputs({ ONEAPP_COPILOT_CONTEXT_SIZE: 1000 })).toThrow(
      /ONEAPP_COPILOT_CONTEXT_SIZE = "1000"/,
    );
  });

  it('ContextValues has one member per schema variable, typed from the schema', () => {
    const text = renderContextValuesType();
    for (const v of variables) expect(text).toMatch(new RegExp(`^  ${v.name}: .+;$`, 'm'));
    expect(text).toContain("ONEAPP_COPILOT_ENGINE: 'localai' | 'llama-server';");
    expect(text).toContain('ONEAPP_COPILOT_CONTEXT_SIZE: number;');
    expect(text).toContain('ONEAPP_COPILOT_EXTRA_API_KEYS: string[];');
    expect(text).toContain('ONEAPP_COPILOT_METRICS: boolean;');
  });
});
