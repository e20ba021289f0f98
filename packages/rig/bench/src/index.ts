export { runBench } from './run.js';
export type { BenchOptions, BenchReport, Figure, FigureId, TuningResult, TuningVariant } from './types.js';
export { formatJson, formatMarkdown, formatTable } from './report.js';
export {
  QuietMonitor,
  readCounters,
  treeJiffies,
  windowBetween,
  type CpuCounters,
  type CpuWindow,
  type QuietReport,
  type PhaseLoad,
} from './quiet.js';
export { measureReadBandwidth, type BandwidthResult } from './bandwidth.js';
export { weightBytesPerToken, type WeightBytes } from './gguf-bytes.js';
export { runLlamaBench, tgRate, ppRate, type LlamaBenchRow, type LlamaBenchRun } from './llama-bench.js';
export {
  detectEngine,
  streamChat,
  rawTtft,
  openaiClient,
  endpointFetch,
  type Endpoint,
  type EngineKind,
  type StreamResult,
} from './client.js';
export { runFetchBench, parseFetchBench, parseDuration, type FetchBenchResult } from './fetch-bench.js';
export { renderApplianceEngine, startBenchGateway, withFlag, withoutFlag, BENCH_KEY } from './testbed.js';
