// The agent sandbox with plain commands: a run in it reaches the host end of its veth and nothing else
// (another address is unreachable at once), each name it looks up is recorded by the DNS catcher and
// refused, each connection it attempts is in the run's record, and leftovers are still found and ended.
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeAttempt } from './connections.js';
import { agentEnv, agentHome, runAgent, runSandboxed, type AgentHome } from './harness.js';
import { createSandbox, sandboxUnavailable, type Sandbox } from './netns.js';

const unavailable = await sandboxUnavailable();
if (unavailable) console.log(`[agents] sandbox tests skipped: ${unavailable}`);

let sandbox: Sandbox;
let server: Server;
let port: number;
const received: string[] = [];
const homes: AgentHome[] = [];

beforeAll(async () => {
  if (unavailable) return;
  sandbox = await createSandbox();
  server = createServer((s) => s.on('data', (d: Buffer) => received.push(d.toString())).on('end', () => s.end()));
  await new Promise<void>((r) => server.listen(0, sandbox.address, r));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  for (const h of homes) h.remove();
  await new Promise((r) => server?.close(r));
  await sandbox?.destroy();
});

async function inSandbox(script: string) {
  const h = await agentHome('sandbox');
  homes.push(h);
  const env = agentEnv(h, '/dev/null');
  return runSandboxed(sandbox, () =>
    runAgent({ command: process.execPath, args: ['-e', script], cwd: h.work, env, timeoutMs: 30_000 }),
  );
}

describe.skipIf(unavailable)('an agent sandbox', () => {
  it('reaches the host end of its veth; another address is unreachable; a name is refused; all on record', async () => {
    const script = `
      const net = require('node:net');
      const dial = (port, host) => new Promise((r) => {
        const s = net.connect(port, host, () => s.end('hello from the sandbox', () => r('connected')));
        s.on('error', (e) => r(e.code));
      });
      require('node:dns').lookup('update.agent.example', async (e) => {
        console.log('lookup', e && e.code);
        console.log('outside', await dial(443, '192.0.2.10'));
        console.log('host end', await dial(${port}, '${sandbox.address}'));
      });`;
    const r = await inSandbox(script);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(`lookup ENOTFOUND\noutside ENETUNREACH\nhost end connected\n`);
    expect(received.join('')).toBe('hello from the sandbox');
    expect(r.lookups!.map((q) => `${q.name} ${q.answer}`)).toContain('update.agent.example NXDOMAIN');
    const inet = r.attempts!.filter((a) => a.family !== 'unix');
    expect(inet.map((a) => `${describeAttempt(a)} ${a.result}`)).toEqual(
      expect.arrayContaining([`192.0.2.10:443 ENETUNREACH`, `${sandbox.address}:${port} EINPROGRESS`]),
    );
    expect(inet.map(describeAttempt)).toContain(`${sandbox.address}:53`);
    expect(r.leftovers).toEqual([]);
  });

  it('a process that left the group is still found, ended and reported', async () => {
    const r = await inSandbox(
      `require('node:child_process').spawn('setsid', ['sleep', '302'], { detached: true, stdio: 'ignore' }).unref();
       setTimeout(() => console.log('started'), 300);`,
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('started\n');
    expect(r.leftovers).toEqual(['sleep 302']);
  });
});
