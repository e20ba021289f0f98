/**
 * What the engine renderers need to know about the GGUF (model-fetch's manifest has these
 * fields; they are read from the file's header, not assumed).
 */
export interface ModelFacts {
  /** File name inside the models directory. */
  fileName: string;
  bytes: number;
  architecture: string;
  /** Trained context length: a larger window gives garbage, so it caps ONEAPP_COPILOT_CONTEXT_SIZE. */
  contextLength: number;
  blockCount: number;
  headCountKv: number;
  /** Per-head key/value widths (embedding_length / head_count when the GGUF does not say). */
  keyLength: number;
  valueLength: number;
}

/** The engine's view of model-fetch's manifest; refuses a file that is not a GGUF. */
export function modelFactsFromManifest(manifest: {
  file: string;
  bytes: number;
  gguf: Omit<ModelFacts, 'fileName' | 'bytes'> | null;
}): ModelFacts {
  if (!manifest.gguf) throw new Error(`${manifest.file} is not a GGUF model (its manifest has no GGUF header facts)`);
  const g = manifest.gguf;
  return {
    fileName: manifest.file,
    bytes: manifest.bytes,
    architecture: g.architecture,
    contextLength: g.contextLength,
    blockCount: g.blockCount,
    headCountKv: g.headCountKv,
    keyLength: g.keyLength,
    valueLength: g.valueLength,
  };
}
