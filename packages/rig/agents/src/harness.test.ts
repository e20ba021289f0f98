// The run harness with plain commands: its environment is only what it is given, its bound ends the
// whole process group, and a process that escapes the group (setsid) is found, ended and reported.
import { afterAll, describe, expect, it } from 'vitest';
import { agentEnv, agentHome, runAgent, type AgentHome } from './harness.js';

const homes: AgentHome[] = [];
const home = async () => {
  const h = await agentHome('harness');
  homes.push(h);
  return h;
};

afterAll(() => {
  for (const h of homes) h.remove();
});

describe('runAgent', () => {
  it('gives the command only the environment it is given (HOME its own, nothing of ours)', async () => {
    process.env.SLM_AGENTS_TEST_LEAK = 'must-not-reach-the-agent';
    const h = await home();
    const r = await runAgent({ command: 'env', args: [], cwd: h.work, env: agentEnv(h, '/ca.pem'), timeoutMs: 10_000 });
    delete process.env.SLM_AGENTS_TEST_LEAK;
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`HOME=${h.home}\n`);
    expect(r.stdout).toContain('NODE_EXTRA_CA_CERTS=/ca.pem\n');
    expect(r.stdout).not.toContain('SLM_AGENTS_TEST_LEAK');
  });

  it('ends the process group at the bound', async () => {
    const h = await home();
    const r = await runAgent({
      command: 'sh',
      args: ['-c', 'sleep 60 & sleep 60; echo never'],
      cwd: h.work,
      env: agentEnv(h, '/dev/null'),
      timeoutMs: 500,
    });
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe('SIGTERM');
    expect(r.stdout).not.toContain('never');
    expect(r.leftovers).toEqual([]);
  });

  it('finds a process that left the group (setsid), ends it and reports it', async () => {
    const h = await home();
    const r = await runAgent({
      command: 'sh',
      args: ['-c', 'setsid sleep 301 </dev/null >/dev/null 2>&1 & sleep 0.5; echo started'],
      cwd: h.work,
      env: agentEnv(h, '/dev/null'),
      timeoutMs: 10_000,
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('started\n');
    expect(r.leftovers).toEqual(['sleep 301']);
  });
});
