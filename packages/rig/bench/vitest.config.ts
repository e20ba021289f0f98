import { packageTestConfig } from '../../../vitest.shared.ts';

// The quick bench starts real processes (llama-server, nginx, wget): minutes, not seconds.
export default packageTestConfig({ testTimeout: 15 * 60_000 });
