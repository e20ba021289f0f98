// 5. Load, quick mode (the full run is `pnpm --filter @slm-copilot/hardening load`):
// 8 streaming clients through nginx (TLS, limit 120/min) to llama-server with 2 slots. Asserted here:
// every stream ends with [DONE] or a clean JSON 429/503 — none truncated, nothing else — with more
// requests in flight than the engine has slots. (The rate
// limit and memory figures are printed; the full run asserts them.)
import { removeTempRoots } from '@slm-copilot/nginx-config/test-support/nginx';
import { afterAll, describe, expect, it } from 'vitest';
import { QUICK, runLoad, summary } from './load.js';

afterAll(() => removeTempRoots());

describe('load (quick)', () => {
  it(
    '8 concurrent streams through nginx to a 2-slot llama-server: none truncated',
    async () => {
      const r = await runLoad(QUICK);
      console.log(summary(r));
      expect(r.truncated).toBe(0);
      expect(r.other).toEqual([]);
      expect(r.completed).toBeGreaterThan(0);
      expect(r.completed + r.rejected429 + r.rejected503).toBe(r.requests);
      // More requests in flight than the engine has slots (how many exactly depends on how many
      // clients are sleeping out a Retry-After at that moment).
      expect(r.maxInFlight).toBeGreaterThan(QUICK.parallel);
    },
    40 * 60_000,
  );
});
