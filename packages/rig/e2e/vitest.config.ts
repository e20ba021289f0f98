import { packageTestConfig } from '../../../vitest.shared.ts';

// One VM, phases in order: files run one at a time and tests never retry.
export default packageTestConfig({ testTimeout: 30 * 60_000 });
