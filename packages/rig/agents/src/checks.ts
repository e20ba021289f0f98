// The assertions every served agent run must pass (shared by the agents' test files), and what a sandboxed
// run may reach for.
import { expect } from 'vitest';
import type { Appliance } from './appliance.js';
import { normalise } from './evidence.js';
import { unexplained, type KnownAttempt } from './network.js';
import type { AgentName } from './pins.js';
import type { Session } from './session.js';

/** Exit 0 within the bound; the printed text is what the engine generated; the log; no process left. */
export function expectServed(s: Session, app: Appliance, name: AgentName, endpoint: string, prompt: string): void {
  const task = s.run.task;
  expect(task.timedOut, 'the run hit its bound').toBe(false);
  expect(task.exitCode, task.stderr.slice(-2000)).toBe(0);
  // The engine's own record of its last completion: the agent's prompt in, the text it printed out.
  expect(s.completion?.prompt).toContain(prompt);
  const generated = normalise(s.completion?.generated ?? '');
  expect(generated.length).toBeGreaterThan(200);
  expect(normalise(task.stdout)).toContain(generated);
  // The gateway: the agent's endpoint under its key's name, and nothing refused or failed.
  expect(s.entries.map((e) => e.path)).toContain(endpoint);
  for (const e of s.entries) {
    expect(e.key).toBe(app.keys[name]!.name);
    expect(e.status, `${e.method} ${e.path}`).toBeLessThan(400);
  }
  expect(s.unkeyed.map((e) => `${e.method} ${e.path} ${e.status}`)).toEqual([]);
  expect(task.leftovers).toEqual([]);
}

/**
 * The run was sandboxed and reached the gateway; every host name it looked up and every other address it
 * dialled is a known attempt (named in the test), and was refused: NXDOMAIN from the catcher, or no route.
 */
export function expectOnlyAppliance(s: Session, known: readonly KnownAttempt[] = []): void {
  const n = s.network;
  expect(n, 'the run was not sandboxed').toBeDefined();
  if (!n) return;
  expect(n.toGateway, `no connection to the gateway at ${n.gateway}`).toBeGreaterThan(0);
  expect(unexplained(n, known), 'attempts no known attempt explains').toEqual([]);
  for (const q of n.lookups) expect(q.answer).toBe('NXDOMAIN');
  for (const a of n.outside) expect(['ENETUNREACH', 'ECONNREFUSED', 'EHOSTUNREACH']).toContain(a.result);
}
