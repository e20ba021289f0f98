// Bytes of weights a CPU reads per generated token, from the GGUF header's tensor table: every
// tensor's bytes (from consecutive data offsets), minus the token-embedding matrix — generation
// reads one row of it per token — unless the output layer is tied to it (no `output.weight`).
import { stat } from 'node:fs/promises';
import { gguf } from '@huggingface/gguf';

export interface WeightBytes {
  fileBytes: number;
  tensorCount: number;
  /** Sum of all tensor data (what llama-bench calls model_size). */
  tensorBytes: number;
  tokenEmbeddingBytes: number;
  /** True when there is no separate output.weight (the embedding matrix is read whole per token). */
  tiedOutput: boolean;
  /** Weights read per generated token. */
  bytesPerToken: number;
}

export async function weightBytesPerToken(file: string): Promise<WeightBytes> {
  const parsed = await gguf(file, { allowLocalFile: true });
  const fileBytes = (await stat(file)).size;
  const dataStart = Number(parsed.tensorDataOffset);
  const infos = [...parsed.tensorInfos].sort((a, b) => Number(a.offset) - Number(b.offset));
  const size = new Map<string, number>();
  infos.forEach((t, i) => {
    const start = Number(t.offset);
    const end = i + 1 < infos.length ? Number(infos[i + 1]!.offset) : fileBytes - dataStart;
    size.set(t.name, end - start); // includes the alignment padding (≤ 31 bytes)
  });
  const tensorBytes = [...size.values()].reduce((a, b) => a + b, 0);
  const tokenEmbeddingBytes = size.get('token_embd.weight') ?? 0;
  const tiedOutput = !size.has('output.weight');
  return {
    fileBytes,
    tensorCount: infos.length,
    tensorBytes,
    tokenEmbeddingBytes,
    tiedOutput,
    bytesPerToken: tiedOutput ? tensorBytes : tensorBytes - tokenEmbeddingBytes,
  };
}
