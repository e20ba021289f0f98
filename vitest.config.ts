import { defineConfig } from 'vitest/config';

// `pnpm vitest` at the root runs every package's tests as one project each.
export default defineConfig({ test: { projects: ['packages/*'] } });
