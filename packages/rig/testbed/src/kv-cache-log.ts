// llama.cpp's own account of the KV cache it allocated, read from the server's log: the line
// src/llama-kv-cache.cpp prints at start (verbosity 4, `-lv 4`) — the figure the RAM plan must match.

export interface LoggedKvCache {
  totalMiB: number;
  cells: number;
  layers: number;
  typeK: string;
  typeV: string;
  kMiB: number;
  vMiB: number;
}

const KV_LINE = new RegExp(
  String.raw`llama_kv_cache: size = +([\d.]+) MiB \( *(\d+) cells, +(\d+) layers.*` +
    String.raw`K \((\w+)\): +([\d.]+) MiB, V \((\w+)\): +([\d.]+) MiB`,
);

/** The first `llama_kv_cache: size = …` line of a llama-server log; throws with the log's tail when absent. */
export function loggedKvCache(output: string): LoggedKvCache {
  const m = KV_LINE.exec(output);
  if (!m) throw new Error(`no llama_kv_cache size line in the engine's output:\n${output.slice(-3000)}`);
  const [, total, cells, layers, typeK, kMiB, typeV, vMiB] = m;
  return {
    totalMiB: Number(total),
    cells: Number(cells),
    layers: Number(layers),
    typeK: typeK!,
    typeV: typeV!,
    kMiB: Number(kMiB),
    vMiB: Number(vMiB),
  };
}
