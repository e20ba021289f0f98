import { createHash } from 'node:crypto';
import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { gguf, GGMLFileQuantizationType } from '@huggingface/gguf';
import { ExitCode, sha256File, TaskError, writeFileAtomic } from '@slm-copilot/task-kit';

/** What the GGUF header says about the model: enough to cap the context and size the KV cache. */
export interface GgufFacts {
  /** GGUF format version (3 today). */
  version: number;
  /** `general.architecture`, e.g. `mistral3`, `llama`, `qwen2`. */
  architecture: string;
  /** `general.name`, when present. */
  name: string | null;
  /** `<arch>.context_length`: the trained context in tokens. */
  contextLength: number;
  /** `<arch>.block_count`: transformer layers. */
  blockCount: number;
  /** `<arch>.embedding_length`. */
  embeddingLength: number;
  /** `<arch>.feed_forward_length`, when present. */
  feedForwardLength: number | null;
  /** `<arch>.attention.head_count` (the largest, if given per layer). */
  headCount: number;
  /** `<arch>.attention.head_count_kv` (defaults to headCount, as llama.cpp does). */
  headCountKv: number;
  /** `<arch>.attention.key_length`, else embeddingLength / headCount. */
  keyLength: number;
  /** `<arch>.attention.value_length`, else embeddingLength / headCount. */
  valueLength: number;
  /** `general.file_type` (llama.cpp's LLAMA_FTYPE number), when present. */
  fileType: number | null;
  /** Name of that file type, e.g. `Q4_K_M`. */
  quantization: string | null;
  tensorCount: number;
  /** Sum of the tensor shapes. */
  parameterCount: number | null;
  /** Length of `tokenizer.ggml.tokens`. */
  vocabSize: number | null;
  /** Whether the file embeds a chat template (`tokenizer.chat_template`). */
  hasChatTemplate: boolean;
}

/** How the cheap every-boot check is computed; stored in the manifest so it can change later. */
export interface SampledHash {
  algorithm: 'sha256(size,16x1MiB)';
  samples: number;
  sampleBytes: number;
  value: string;
}

/** Written beside the model as `<model>.manifest.json`; read by the engine package. */
export interface ModelManifest {
  manifestVersion: 1;
  /** Base name of the model file. */
  file: string;
  bytes: number;
  sha256: string;
  sampledHash: SampledHash;
  /** The URL it was downloaded from (null when made with `inspect`). */
  source: string | null;
  createdAt: string;
  /** Null when the file is not a GGUF (the engine refuses such a model). */
  gguf: GgufFacts | null;
}

export const SAMPLE_COUNT = 16;
export const SAMPLE_BYTES = 1024 * 1024;

export function manifestPath(modelPath: string): string {
  return `${modelPath}.manifest.json`;
}

/** The file offsets of the samples: evenly spaced, the first at 0 and the last ending at EOF. */
export function sampleOffsets(size: number, samples = SAMPLE_COUNT, sampleBytes = SAMPLE_BYTES): number[] {
  const len = Math.min(sampleBytes, size);
  if (len === 0) return [];
  const span = size - len;
  return Array.from({ length: samples }, (_, i) => Math.floor((span * i) / (samples - 1)));
}

/**
 * SHA-256 over the file size and 16 evenly spaced 1 MiB samples (each prefixed with its offset):
 * 16 MiB read whatever the file size, so it is cheap enough for every boot of a 14 GB model. It
 * catches truncation, a wrong file and damage inside a sampled region — not every flipped bit
 * (that is what {@link verifyFull} is for).
 */
export async function computeSampledHash(file: string): Promise<SampledHash> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const hash = createHash('sha256');
    const header = Buffer.alloc(8);
    header.writeBigUInt64LE(BigInt(size));
    hash.update(header);
    const buf = Buffer.alloc(Math.min(SAMPLE_BYTES, size));
    for (const offset of sampleOffsets(size)) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
      const at = Buffer.alloc(8);
      at.writeBigUInt64LE(BigInt(offset));
      hash.update(at);
      hash.update(buf.subarray(0, bytesRead));
    }
    return {
      algorithm: 'sha256(size,16x1MiB)',
      samples: SAMPLE_COUNT,
      sampleBytes: SAMPLE_BYTES,
      value: hash.digest('hex'),
    };
  } finally {
    await handle.close();
  }
}

const GGUF_MAGIC = Buffer.from('GGUF', 'latin1');

export async function isGguf(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await handle.read(buf, 0, 4, 0);
    return bytesRead === 4 && buf.equals(GGUF_MAGIC);
  } finally {
    await handle.close();
  }
}

const toNumber = (v: unknown): number | null => {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v) && v.length > 0) {
    const nums = v.map(toNumber).filter((n): n is number => n !== null);
    return nums.length ? Math.max(...nums) : null;
  }
  return null;
};

/** Reads the GGUF header and metadata (not the tensor data) with `@huggingface/gguf`. */
export async function readGgufFacts(file: string): Promise<GgufFacts> {
  let parsed;
  try {
    parsed = await gguf(file, { allowLocalFile: true, computeParametersCount: true });
  } catch (error) {
    throw new TaskError(`cannot read the GGUF header of ${file}: ${(error as Error).message}`, {
      exitCode: ExitCode.integrity,
      hint: 'the file is damaged or not a model; verify it with model-fetch verify --full',
      cause: error,
    });
  }
  const md = parsed.metadata as unknown as Record<string, unknown>;
  const arch = md['general.architecture'];
  if (typeof arch !== 'string' || arch === '') {
    throw new TaskError(`${file}: the GGUF has no general.architecture`, { exitCode: ExitCode.integrity });
  }
  const required = (key: string): number => {
    const v = toNumber(md[`${arch}.${key}`]);
    if (v === null) throw new TaskError(`${file}: the GGUF has no ${arch}.${key}`, { exitCode: ExitCode.integrity });
    return v;
  };
  const optional = (key: string): number | null => toNumber(md[`${arch}.${key}`]);
  const embeddingLength = required('embedding_length');
  const headCount = required('attention.head_count');
  const headCountKv = optional('attention.head_count_kv') ?? headCount;
  const headDim = headCount > 0 ? Math.floor(embeddingLength / headCount) : 0;
  const fileType = toNumber(md['general.file_type']);
  const tokens = md['tokenizer.ggml.tokens'];
  return {
    version: Number(parsed.metadata.version),
    architecture: arch,
    name: typeof md['general.name'] === 'string' ? (md['general.name'] as string) : null,
    contextLength: required('context_length'),
    blockCount: required('block_count'),
    embeddingLength,
    feedForwardLength: optional('feed_forward_length'),
    headCount,
    headCountKv,
    keyLength: optional('attention.key_length') ?? headDim,
    valueLength: optional('attention.value_length') ?? headDim,
    fileType,
    quantization: fileType === null ? null : (GGMLFileQuantizationType[fileType] ?? `file_type_${fileType}`),
    tensorCount: Number(parsed.metadata.tensor_count),
    parameterCount: typeof parsed.parameterCount === 'number' ? parsed.parameterCount : null,
    vocabSize: Array.isArray(tokens) ? tokens.length : null,
    hasChatTemplate: typeof md['tokenizer.chat_template'] === 'string',
  };
}

export interface BuildManifestOptions {
  /** Known SHA-256 (skips hashing the whole file again); computed when omitted. */
  sha256?: string;
  source?: string | null;
  /** GGUF facts already read (e.g. by fetch's GGUF check): skips parsing the header again. */
  gguf?: GgufFacts | null;
}

/** Builds the manifest of a local file: full hash (unless given), sampled hash, GGUF facts. */
export async function buildManifest(file: string, options: BuildManifestOptions = {}): Promise<ModelManifest> {
  const st = await stat(file);
  const [sha256, sampledHash] = await Promise.all([options.sha256 ?? sha256File(file), computeSampledHash(file)]);
  return {
    manifestVersion: 1,
    file: path.basename(file),
    bytes: st.size,
    sha256: sha256.toLowerCase(),
    sampledHash,
    source: options.source ?? null,
    createdAt: new Date().toISOString(),
    gguf: options.gguf !== undefined ? options.gguf : (await isGguf(file)) ? await readGgufFacts(file) : null,
  };
}

export async function writeManifest(modelPath: string, manifest: ModelManifest): Promise<string> {
  const file = manifestPath(modelPath);
  await writeFileAtomic(file, `${JSON.stringify(manifest, null, 2)}\n`);
  return file;
}

/** Reads `<model>.manifest.json`; null when there is none or it is unreadable (then the file is re-verified). */
export async function readManifest(modelPath: string): Promise<ModelManifest | null> {
  let text: string;
  try {
    text = await readFile(manifestPath(modelPath), 'utf8');
  } catch {
    return null;
  }
  try {
    const m = JSON.parse(text) as ModelManifest;
    if (m.manifestVersion !== 1 || typeof m.sha256 !== 'string' || typeof m.bytes !== 'number' || !m.sampledHash)
      return null;
    return m;
  } catch {
    return null;
  }
}

export type VerifyResult =
  | { ok: true; checked: 'sampled' | 'full'; ms: number }
  | {
      ok: false;
      checked: 'sampled' | 'full';
      ms: number;
      reason: 'missing' | 'size' | 'sampled-hash' | 'sha256';
      message: string;
    };

async function sizeCheck(
  file: string,
  manifest: ModelManifest,
  checked: 'sampled' | 'full',
  t0: number,
): Promise<VerifyResult | null> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    return { ok: false, checked, ms: performance.now() - t0, reason: 'missing', message: `${file} does not exist` };
  }
  if (size !== manifest.bytes) {
    return {
      ok: false,
      checked,
      ms: performance.now() - t0,
      reason: 'size',
      message: `${file} has ${size} bytes, its manifest says ${manifest.bytes} (truncated or replaced)`,
    };
  }
  return null;
}

/** The every-boot check: size + sampled hash (reads 16 MiB). */
export async function verifySampled(file: string, manifest: ModelManifest): Promise<VerifyResult> {
  const t0 = performance.now();
  const bad = await sizeCheck(file, manifest, 'sampled', t0);
  if (bad) return bad;
  const sampled = await computeSampledHash(file);
  if (sampled.value !== manifest.sampledHash.value) {
    return {
      ok: false,
      checked: 'sampled',
      ms: performance.now() - t0,
      reason: 'sampled-hash',
      message:
        `${file}: sampled hash ${sampled.value.slice(0, 16)}… differs from the manifest's ` +
        `${manifest.sampledHash.value.slice(0, 16)}… (the file changed)`,
    };
  }
  return { ok: true, checked: 'sampled', ms: performance.now() - t0 };
}

/** The full check: size + SHA-256 of every byte. */
export async function verifyFull(file: string, manifest: ModelManifest): Promise<VerifyResult> {
  const t0 = performance.now();
  const bad = await sizeCheck(file, manifest, 'full', t0);
  if (bad) return bad;
  const sha = await sha256File(file);
  if (sha !== manifest.sha256.toLowerCase()) {
    return {
      ok: false,
      checked: 'full',
      ms: performance.now() - t0,
      reason: 'sha256',
      message: `${file}: SHA-256 ${sha} differs from the manifest's ${manifest.sha256}`,
    };
  }
  return { ok: true, checked: 'full', ms: performance.now() - t0 };
}
