import { defineConfig } from 'vitest/config';

/** One vitest setup for every package: workspace packages resolve to their TypeScript source. */
export function packageTestConfig(options: { testTimeout?: number; hookTimeout?: number } = {}) {
  const conditions = ['source', 'module', 'node', 'development|production'];
  return defineConfig({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['source'] } },
    test: {
      include: ['src/**/*.test.ts'],
      // The JSON report feeds the one-line total that `pnpm test:all` prints at the end.
      reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
      testTimeout: options.testTimeout ?? 10_000,
      ...(options.hookTimeout ? { hookTimeout: options.hookTimeout } : {}),
    },
  });
}
