import { packageTestConfig } from '../../../vitest.shared.ts';

// Real processes: the slow VM tests (src/*.slow.test.ts) set their own, longer timeouts per test.
export default packageTestConfig({ testTimeout: 60_000 });
