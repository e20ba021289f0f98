import { mergeConfig } from 'vitest/config';
import { packageTestConfig } from '../../../vitest.shared.ts';

// One file at a time: each starts a real llama-server and nginx and runs agent CLIs (2 shared cores).
// Every agent run has its own bound (harness.ts); the hooks cover a cold engine build and agent installs.
export default mergeConfig(packageTestConfig({ testTimeout: 10 * 60_000, hookTimeout: 45 * 60_000 }), {
  test: { fileParallelism: false },
});
