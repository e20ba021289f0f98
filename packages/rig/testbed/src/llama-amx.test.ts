import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISPATCH_CPU_VARIANTS, bestCpuVariant, hostCpuFlags, loadedCpuVariant } from './cpu-variant.js';
import { ensureLlamaBuild } from './llama-build.js';
import { startLlamaServer, type LlamaServer } from './llama-server.js';
import { ensureTinyModel } from './tiny-model.js';

/**
 * We ship no AMX (sapphirerapids) module: a self-built AMX path crashed on quantized models
 * (llama.cpp #20824) and no machine here has AMX to prove one. On an AMX host this checks what
 * that means for the shipped build: the loader picks a non-AMX module (zen4) and quantized
 * (Q4_K_M) inference works. Elsewhere it is skipped, saying why.
 */
const flags = await hostCpuFlags();
const amx = flags.includes('amx_tile');
if (!amx)
  console.log(
    '[amx] skipped: /proc/cpuinfo has no amx_tile on this host; ' +
      'the AMX-host check needs a Sapphire Rapids (or newer) CPU',
  );

describe.skipIf(!amx)('dispatch build on an AMX host', () => {
  let server: LlamaServer;
  beforeAll(async () => {
    const build = await ensureLlamaBuild({ variant: 'dispatch' });
    const model = await ensureTinyModel({ llama: build });
    server = await startLlamaServer({ binary: build.llamaServer, args: ['-m', model.path, '-c', '2048', '-t', '2'] });
  }, 40 * 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('loads a non-AMX CPU module and answers with the Q4_K_M model', async () => {
    const loaded = loadedCpuVariant(server.output());
    expect(loaded).not.toBe('sapphirerapids');
    expect(DISPATCH_CPU_VARIANTS as readonly (string | null)[]).toContain(loaded);
    expect(loaded).toBe(bestCpuVariant(flags));
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${server.baseUrl}/completion`, {
        method: 'POST',
        body: JSON.stringify({ prompt: `Count ${i}`, n_predict: 8 }),
      });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { tokens_predicted: number }).tokens_predicted).toBeGreaterThan(0);
    }
  });
});
