import { packageTestConfig } from '../../../vitest.shared.ts';

// Four nodes (nginx + llama-server each) on 2 shared cores: generous bounds for a cold llama.cpp build.
export default packageTestConfig({ testTimeout: 4 * 60_000, hookTimeout: 45 * 60_000 });
