import { copyFile, open, rm, truncate } from 'node:fs/promises';
import path from 'node:path';
import { ensureTinyModel, TINY_MODEL_PARAMS, type GgufModel } from '@slm-copilot/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildManifest,
  computeSampledHash,
  manifestPath,
  readManifest,
  SAMPLE_BYTES,
  sampleOffsets,
  verifyFull,
  verifySampled,
  writeManifest,
  type ModelManifest,
} from './manifest.js';
import { kvCacheBytes } from './kv-cache.js';
import { randomFile, runCli, tempDir } from '../test-support/index.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir('manifest');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function flipByte(file: string, offset: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] = b[0]! ^ 0xff;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

describe('sampled hash', () => {
  const SIZE = 40 * 1024 * 1024; // bigger than the 16 MiB it samples, so some bytes are not sampled
  let file: string;
  let manifest: ModelManifest;
  beforeAll(async () => {
    file = path.join(dir, 'random.bin');
    const f = await randomFile(file, SIZE);
    manifest = await buildManifest(file);
    expect(manifest.sha256).toBe(f.sha256);
    expect(manifest.gguf).toBeNull();
  });

  it('samples 16 evenly spaced MiB, from the first byte to the last', () => {
    const offsets = sampleOffsets(SIZE);
    expect(offsets).toHaveLength(16);
    expect(offsets[0]).toBe(0);
    expect(offsets[15]! + SAMPLE_BYTES).toBe(SIZE);
    expect(sampleOffsets(1000)).toEqual(Array(16).fill(0));
    expect(sampleOffsets(0)).toEqual([]);
  });

  it('passes on the intact file', async () => {
    expect(await verifySampled(file, manifest)).toMatchObject({ ok: true, checked: 'sampled' });
    expect(await verifyFull(file, manifest)).toMatchObject({ ok: true, checked: 'full' });
  });

  it('detects a flipped byte inside a sampled region', async () => {
    const copy = path.join(dir, 'flipped.bin');
    await copyFile(file, copy);
    await flipByte(copy, sampleOffsets(SIZE)[7]! + 12345);
    expect(await verifySampled(copy, manifest)).toMatchObject({ ok: false, reason: 'sampled-hash' });
    expect(await verifyFull(copy, manifest)).toMatchObject({ ok: false, reason: 'sha256' });
  });

  it('misses a byte outside the samples (by design), which --full catches', async () => {
    const copy = path.join(dir, 'flipped-unsampled.bin');
    await copyFile(file, copy);
    const gapStart = sampleOffsets(SIZE)[7]! + SAMPLE_BYTES;
    expect(gapStart).toBeLessThan(sampleOffsets(SIZE)[8]!);
    await flipByte(copy, gapStart + 10);
    expect((await verifySampled(copy, manifest)).ok).toBe(true);
    expect(await verifyFull(copy, manifest)).toMatchObject({ ok: false, reason: 'sha256' });
  });

  it('detects a truncated file', async () => {
    const copy = path.join(dir, 'truncated.bin');
    await copyFile(file, copy);
    await truncate(copy, SIZE - 1);
    const r = await verifySampled(copy, manifest);
    expect(r).toMatchObject({ ok: false, reason: 'size' });
    expect(!r.ok && r.message).toMatch(/has 41943039 bytes, its manifest says 41943040/);
    expect(await verifySampled(path.join(dir, 'gone.bin'), manifest)).toMatchObject({ ok: false, reason: 'missing' });
  });

  it('is not fooled by a same-size file with the same first MiB', async () => {
    const copy = path.join(dir, 'tail-changed.bin');
    await copyFile(file, copy);
    await flipByte(copy, SIZE - 1);
    expect((await computeSampledHash(copy)).value).not.toBe(manifest.sampledHash.value);
  });
});

describe('manifest of the test bed tiny model (a real GGUF)', () => {
  let model: GgufModel;
  let copy: string;
  beforeAll(async () => {
    // First call on a clean machine builds llama.cpp (minutes); cached afterwards.
    model = await ensureTinyModel();
    copy = path.join(dir, path.basename(model.path));
    await copyFile(model.path, copy);
  }, 30 * 60_000);

  it('reads the GGUF header with @huggingface/gguf', async () => {
    const m = await buildManifest(copy, { source: 'test' });
    expect(m).toMatchObject({
      manifestVersion: 1,
      file: path.basename(model.path),
      bytes: model.bytes,
      sha256: model.sha256,
      source: 'test',
    });
    const p = TINY_MODEL_PARAMS;
    expect(m.gguf).toMatchObject({
      version: 3,
      architecture: p.arch,
      name: p.name,
      contextLength: 32768,
      blockCount: p.nLayer,
      embeddingLength: p.nEmbd,
      feedForwardLength: p.nFf,
      headCount: p.nHead,
      headCountKv: p.nHeadKv,
      keyLength: p.headDim,
      valueLength: p.headDim,
      fileType: 15,
      quantization: 'Q4_K_M',
      vocabSize: p.vocabSize,
      hasChatTemplate: true,
    });
    expect(m.gguf!.tensorCount).toBeGreaterThan(p.nLayer * 9);
    expect(m.gguf!.parameterCount).toBeGreaterThan(0);
    // f16 KV cache: layers × kv heads × (k + v) × 2 bytes per token
    expect(kvCacheBytes(m.gguf!, 32768)).toBe(p.nLayer * p.nHeadKv * (2 * p.headDim) * 2 * 32768);
    // a one-byte cache type (q8_0-like) halves it
    expect(kvCacheBytes(m.gguf!, 32768, 1)).toBe(p.nLayer * p.nHeadKv * (2 * p.headDim) * 32768);
  });

  it('writes the manifest beside the model; the CLI prints and verifies it', async () => {
    const m = await buildManifest(copy);
    expect(await writeManifest(copy, m)).toBe(manifestPath(copy));
    expect(await readManifest(copy)).toEqual(m);

    const inspect = await runCli(['inspect', copy]);
    expect(inspect.code).toBe(0);
    expect(JSON.parse(inspect.stdout)).toMatchObject({
      sha256: model.sha256,
      gguf: { contextLength: 32768, architecture: 'mistral3' },
    });

    expect((await runCli(['verify', copy])).code).toBe(0);
    expect((await runCli(['verify', copy, '--full'])).code).toBe(0);
    await flipByte(copy, 100); // inside the first sample (the GGUF header)
    const bad = await runCli(['verify', copy]);
    expect(bad.code).toBe(6);
    expect(bad.stderr).toMatch(/sampled hash .* differs from the manifest/);
  }, 60_000);
});
