import { mergeConfig } from 'vitest/config';
import { packageTestConfig } from '../../../vitest.shared.ts';

// One test file at a time: the machine is shared (2 cores) and several files run real nginx,
// llama-server, testssl or a network namespace; every phase has its own timeout.
export default mergeConfig(packageTestConfig({ testTimeout: 120_000 }), {
  test: { fileParallelism: false, hookTimeout: 180_000 },
});
