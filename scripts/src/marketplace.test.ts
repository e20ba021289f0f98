/** The marketplace entry of a built image: the schema's inputs with the builder's defaults, checksums, version. */
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { marketplaceInputs } from '@slm-copilot/context-schema';
import { renderMarketplaceYaml, type ImageFacts } from './marketplace.js';

const image: ImageFacts = {
  file: '/out/slm-copilot.qcow2',
  fileSize: 123,
  virtualSize: 456,
  sha256: 'a'.repeat(64),
  md5: 'b'.repeat(32),
};
const options = {
  version: '9.9.9',
  osId: 'Debian',
  osRelease: '12',
  imageUrl: 'file:///out/slm-copilot.qcow2',
  contextSizeDefault: 4096,
  createdAt: new Date(0),
};

describe('renderMarketplaceYaml', () => {
  it("offers the builder's context size as the default and every other input as the schema has it", () => {
    const doc = parse(renderMarketplaceYaml(image, options));
    const inputs: Record<string, string> = doc.opennebula_template.user_inputs;
    expect(inputs.oneapp_copilot_context_size).toMatch(/\|4096$/);
    const schema = marketplaceInputs().user_inputs;
    expect(schema.oneapp_copilot_context_size).not.toMatch(/\|4096$/); // else this test proves nothing
    for (const [name, input] of Object.entries(schema))
      if (name !== 'oneapp_copilot_context_size') expect(inputs[name], name).toBe(input);
    expect(doc.images[0]).toMatchObject({ size: 456, checksum: { md5: image.md5, sha256: image.sha256 } });
    expect(doc.version).toBe('9.9.9');
  });

  it('refuses a default the appliance would refuse', () => {
    expect(() => renderMarketplaceYaml(image, { ...options, contextSizeDefault: 12 })).toThrow(
      /ONEAPP_COPILOT_CONTEXT_SIZE/,
    );
  });
});
