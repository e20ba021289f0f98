// Test support: the real engine for the tests (llama.cpp's llama-server and the tiny test GGUF), from
// the test rig. Tests under src/ take it from here, so that nothing in src/ names a rig package.
export {
  ensureLlamaBuild,
  ensureTinyModel,
  startLlamaServer,
  type GgufModel,
  type LlamaBuild,
  type LlamaServer,
  type LlamaVariant,
} from '@slm-copilot/testbed';
