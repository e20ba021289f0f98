// Pinned installs from the npm registry, cached: the pins hold, a second call is a cache hit, and an
// install whose lock file disagrees with the pin is refused without leaving an entry behind.
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

  it('refuses an install whose lock file disagrees with the pin, and leaves no entry', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'slm-agents-cache-'));
    scratch.push(root);
    const pin = { ...AGENT_PINS.continue, integrity: 'sha512-not-the-registry-integrity' };
    await expect(ensurePinned(pin, { root })).rejects.toThrow(/integrity .* the pin is 1\.5\.47 with sha512-not-the/);
    expect(await readdir(path.join(root, 'agents'))).toEqual([]);
  });
});
