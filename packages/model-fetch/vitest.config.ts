import { packageTestConfig } from '../../vitest.shared.ts';

// Download tests run real wget against a local mirror; the tiny-model test may build llama.cpp once.
export default packageTestConfig({ testTimeout: 60_000 });
