// The assertions every served agent run must pass (shared by the agents' test files), and what a sandboxed
// run may reach for.
import { expect } from 'vitest';
import type { Appliance } from './appliance.js';
import { normalise } from './evidence.js';
import { unexplained, type KnownAttempt } from './network.js';
import type { AgentName } from './pins.js';
import type { Session } from './session.js';

/** The engine's reply cap for requests without max_tokens (`--n-predict`, ONEAPP_COPILOT_MAX_TOKENS). */
export function replyCap(app: Appliance): number {
  const at = app.engineArgs.indexOf('--n-predict');
  if (at < 0) throw new Error(`the engine has no --n-predict: ${app.engineArgs.join(' ')}`);
  return Number(app.engineArgs[at + 1]);
}

/**
 * The run's replies ended by themselves: the engine generated some tokens for them (its /metrics), fewer in
 * all than the appliance's reply cap, which one reply that never ends reaches (or passes, when its request
 * asks for more, as Claude Code's max_tokens 32000 does) before it stops.
 */
export function expectEndedByItself(s: Session, app: Appliance): void {
  const generated = s.figures.generatedTokens;
  expect(generated).toBeGreaterThan(0);
  expect(generated, 'the replies reached the reply cap').toBeLessThan(replyCap(app));
}

/** What an agent is known to do besides its task, named by its test. */
export interface KnownExtras {
  /** Requests without a key it sends (`METHOD /path status`): each refused by the gateway, never proxied. */
  unkeyed?: readonly string[];
  /** A process of its that outlives it (the harness finds and ends it: leftovers). */
  leftover?: RegExp;
}

/**
 * Exit 0 within the bound; the printed text is what the engine generated (a reply that ended by itself);
 * the gateway logged `endpoint` under the agent's key, nothing refused; no process left (but `known`'s).
 */
export function expectServed(
  s: Session,
  app: Appliance,
  name: AgentName,
  endpoint: string,
  prompt: string,
  known: KnownExtras = {},
): void {
  const task = s.run.task;
  expect(task.timedOut, 'the run hit its bound').toBe(false);
  expect(task.exitCode, task.stderr.slice(-2000)).toBe(0);
  // The engine's own record of its last completion: the agent's prompt in, the text it printed out.
  expect(s.completion?.prompt).toContain(prompt);
  expectEndedByItself(s, app);
  const generated = normalise(s.completion?.generated ?? '');
  // (the 'agent' test model's replies are short: a few dozen tokens typically, at least 4 in 150 tried)
  expect(generated.length).toBeGreaterThan(0);
  expect(normalise(task.stdout)).toContain(generated);
  // The gateway: the agent's endpoint under its key's name, and nothing refused or failed.
  expect(s.entries.map((e) => e.path)).toContain(endpoint);
  for (const e of s.entries) {
    expect(e.key).toBe(app.keys[name]!.name);
    expect(e.status, `${e.method} ${e.path}`).toBeLessThan(400);
  }
  for (const e of s.unkeyed) expect(known.unkeyed ?? []).toContain(`${e.method} ${e.path} ${e.status}`);
  const leftover = known.leftover;
  expect(leftover ? task.leftovers.filter((p) => !leftover.test(p)) : task.leftovers).toEqual([]);
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
