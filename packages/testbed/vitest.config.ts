import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // Real processes: slow hooks (engine build, model generation) set their own timeouts.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
