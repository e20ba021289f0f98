// Pinned installs from the npm registry, cached: the pins hold, a second call is a cache hit; an install
// whose lock file disagrees with the pin, or that outlives its bound, is refused and leaves no entry behind.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { agentEnv, agentHome, runAgent } from './harness.js';
import { ensureAgent, ensurePinned, lockedPackage } from './install.js';
import { AGENT_PINS, type AgentName } from './pins.js';

const NAMES = Object.keys(AGENT_PINS) as AgentName[];
const scratch: string[] = [];

afterAll(async () => {
  for (const d of scratch) await rm(d, { recursive: true, force: true });
});

describe('ensureAgent', () => {
  it.each(NAMES)(
    '%s: the pinned version and integrity, recorded from the lock file; its command runs',
    async (name) => {
      const pin = AGENT_PINS[name];
      const a = await ensureAgent(name, { log: (l) => console.log(`[agents] ${l}`) });
      expect(a.version).toBe(pin.version);
      expect(a.integrity).toBe(pin.integrity);
      expect(await lockedPackage(a.dir, pin.package)).toMatchObject({ version: pin.version, integrity: pin.integrity });
      expect(path.basename(a.dir)).toBe(`${name}-${pin.version}`);
      const h = await agentHome(`${name}-version`);
      try {
        const r = await runAgent({
          command: a.bin,
          args: ['--version'],
          cwd: h.work,
          env: agentEnv(h, '/dev/null'),
          timeoutMs: 60_000,
        });
        expect(r.exitCode, r.stderr).toBe(0);
        expect(r.stdout).toContain(pin.version);
        expect(r.leftovers).toEqual([]);
      } finally {
        h.remove();
      }
      // Installed now: the next call reads the entry's manifest.
      const again = await ensureAgent(name);
      expect(again.cached).toBe(true);
      expect(again.bin).toBe(a.bin);
    },
  );

  // A small real package (no dependencies), not a whole agent: the refusal and the bound are the same code
  // path for any pin, and this keeps the test to seconds.
  const small = { name: 'is-number', package: 'is-number', version: '7.0.0', bin: 'is-number' };

  it('refuses an install whose lock file disagrees with the pin, and leaves no entry', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'slm-agents-cache-'));
    scratch.push(root);
    const pin = { ...small, integrity: 'sha512-not-the-registry-integrity' };
    await expect(ensurePinned(pin, { root })).rejects.toThrow(
      /^npm installed is-number 7\.0\.0 with integrity sha512-\S+; the pin is 7\.0\.0 with sha512-not-the-registry-/,
    );
    expect(await readdir(path.join(root, 'agents'))).toEqual([]);
  });

  it('ends an install that outlives its bound, says so, and leaves no entry', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'slm-agents-cache-'));
    scratch.push(root);
    const pin = { ...small, integrity: 'sha512-not-checked-the-install-is-ended-first' };
    await expect(ensurePinned(pin, { root, timeoutMs: 100 })).rejects.toThrow(
      /^npm install is-number@7\.0\.0 did not finish within 100 ms \(ended\); its last lines:/,
    );
    expect(await readdir(path.join(root, 'agents'))).toEqual([]);
  });
});
