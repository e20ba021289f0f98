import { packageTestConfig } from '../../../vitest.shared.ts';

// Real processes: slow hooks (engine build, model generation) set their own timeouts.
export default packageTestConfig({ testTimeout: 60_000, hookTimeout: 60_000 });
