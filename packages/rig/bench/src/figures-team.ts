// Phase "team": figure 10. The service as the team test builds it (@slm-copilot/team): the lb and two
// inference nodes, each in its own network namespace with the real nginx on its rendered gateway and, on
// the inference nodes, llama-server with the appliance's rendered flags; the OneGate double describes the
// service and each node's team refresher talks to it. Four users take turns of a Cline-like conversation
// (one system prompt for all — the agent's tool descriptions — that differs only in each user's working
// directory near its end, then each user's own growing history), in a seeded random order each round.
// Run once with the lb as rendered (consistent hashing on the key name) and once with round robin (the
// same lb with the hash line removed), same run, same order, new prompts (nothing cached from the first).
// The figure: the share of prompt tokens the engines served from cache (usage.prompt_tokens_details).
// The tiny test model serves here: a cached-token count does not depend on the weights.
import { readFile } from 'node:fs/promises';
import { backendsFromService } from '@slm-copilot/lifecycle';
import { httpsGet } from '@slm-copilot/nginx-config/test-support/client';
import { removeTempRoots } from '@slm-copilot/nginx-config/test-support/nginx';
import { waitFor } from '@slm-copilot/nginx-config/test-support/poll';
import { OneGateClient } from '@slm-copilot/onegate';
import { startOneGateDouble, type OneGateDouble } from '@slm-copilot/onegate/test-support/onegate-double';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';
import { canCreateNetns, chat, startInference, startLb, type InferenceNode, type LbNode } from '@slm-copilot/team';
import { ensureLlamaBuild, ensureTinyModel, seededRandom } from '@slm-copilot/testbed';
import { asLogger, type Bed, type BenchRun } from './context.js';
import { clineSystemPrompt, firstTurn } from './conversation.js';
import { fmt, round } from './stats.js';

const TITLE = '4 users over 2 inference nodes: prompt tokens served from cache, key affinity ÷ round robin';
const USERS = 4;
const KEYS = Array.from({ length: USERS }, (_, u) => `sk-bench-team-user-${u + 1}-0123456789abcdef`);
const HASH_LINE = 'hash $slm_key consistent;';

/** One request of a phase: who, which turn, what the engine counted. */
interface TeamSample {
  user: number;
  turn: number;
  prompt: number;
  cached: number;
}

function turnOrder(rounds: number): number[][] {
  const next = seededRandom(42);
  return Array.from({ length: rounds }, () => {
    const order = Array.from({ length: USERS }, (_, u) => u);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    return order;
  });
}

/** A tool result as the next user message (user- and turn-specific, ~100 tokens). */
/** A message as the service rig's client sends it. */
type Message = { role: string; content: string };

const toolResult = (user: number, turn: number): Message => ({
  role: 'user',
  content:
    `[read_file for 'src/module${turn}/index.ts'] Result:\n` +
    Array.from({ length: 6 }, (_, i) => `${i + 1} | export const user${user}turn${turn}v${i} = ${i * 7};`).join('\n') +
    '\n<environment_details>\n# Current Mode\nACT MODE\n</environment_details>',
});

interface Service {
  double: OneGateDouble;
  lb: LbNode;
  nodes: InferenceNode[];
  stop(): Promise<void>;
}

async function startService(bed: Bed, log: (m: string) => void): Promise<Service> {
  const logger = asLogger(log);
  const build = await ensureLlamaBuild({ variant: bed.variant ?? 'dispatch', log: logger });
  const model = await ensureTinyModel({ llama: build, log: logger });
  const double = await startOneGateDouble();
  const lbVm = double.addVm({ name: 'lb' });
  const nodes: InferenceNode[] = [];
  let lb: LbNode | undefined;
  const stop = async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await lb?.stop().catch(() => undefined);
    await double.close();
    removeTempRoots();
  };
  try {
    lb = await startLb(double, lbVm, { ONEAPP_COPILOT_EXTRA_API_KEYS: KEYS.join(','), ONEAPP_COPILOT_RATE_LIMIT: '0' });
    for (const k of [1, 2]) {
      const vm = double.addVm({ name: `inference-${k}` });
      nodes.push(await startInference({ double, vm, lb, k, build, model }));
    }
    const inference = nodes.map((n) => n.vm.id);
    double.setService({
      id: 1,
      name: 'copilot',
      roles: [
        { name: 'lb', vms: [lbVm.id] },
        { name: 'inference', vms: inference },
      ],
    });
    const theLb = lb;
    await waitFor(
      'the lb to list both nodes and answer /readyz',
      async () => {
        const upstream = await readFile(upstreamPath(theLb), 'utf8');
        const ready = await httpsGet(`${theLb.origin}/readyz`, { ca: theLb.ca, timeoutMs: 5000 });
        return nodes.every((n) => upstream.includes(n.address)) && ready.status === 200;
      },
      { timeoutMs: 120_000 },
    );
    // every node has learned the lb's certificate: each key gets an answer (a one-word prompt, no shared prefix)
    await waitFor(
      'every key to be answered',
      async () => {
        for (const key of KEYS)
          if ((await chat(target(theLb), key, [{ role: 'user', content: 'ping' }])).status !== 200) return false;
        return true;
      },
      { timeoutMs: 120_000 },
    );
    return { double, lb, nodes, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

const upstreamPath = (lb: LbNode) => lb.gateway.files.find((f) => f.path.endsWith('team-upstream.conf'))!.path;
const target = (lb: LbNode) => ({ origin: lb.origin, ca: lb.ca });

/** Renders the lb now (as its refresher does) with the service's current backends, through `mutation`. */
async function applyLb(service: Service, mutation: LbNode['mutation']['current']): Promise<void> {
  const { lb, double } = service;
  const client = new OneGateClient(
    { endpoint: double.endpoint, vmId: String(lb.vm.id), token: lb.vm.token, tokenFrom: 'bench' },
    { log: quietLog, attempts: 1 },
  );
  const r = await client.getService();
  if (!r.ok) throw new Error(`GET /service as the lb: ${r.reason}`);
  lb.mutation.current = mutation;
  await lb.apply({ role: 'lb', backends: backendsFromService(r.value).backends });
}

/** One phase: every user's conversation, turn by turn in the seeded order. */
async function runPhase(lb: LbNode, system: string[], order: number[][]): Promise<TeamSample[]> {
  const history: Message[][] = system.map((s) =>
    firstTurn(s).map((m) => ({ role: m.role, content: typeof m.content === 'string' ? m.content : '' })),
  );
  const samples: TeamSample[] = [];
  for (const [turn, users] of order.entries()) {
    for (const user of users) {
      const r = await chat(target(lb), KEYS[user]!, history[user]!, { maxTokens: 8 });
      if (r.status !== 200)
        throw new Error(`user ${user + 1}, turn ${turn + 1}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
      samples.push({ user, turn, prompt: r.promptTokens ?? 0, cached: r.cachedTokens ?? 0 });
      const reply = (JSON.parse(r.body) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
      history[user]!.push({ role: 'assistant', content: reply || 'ok' }, toolResult(user, turn));
    }
  }
  return samples;
}

const share = (s: TeamSample[]) => {
  const prompt = s.reduce((a, x) => a + x.prompt, 0);
  const cached = s.reduce((a, x) => a + x.cached, 0);
  return { prompt, cached, share: prompt > 0 ? cached / prompt : Number.NaN };
};

/** The users' system prompts for one phase: one agent prompt (marked per phase), each user's own directory. */
async function systemPrompts(service: Service, P: BenchRun['P'], phase: string): Promise<string[]> {
  const engine = service.nodes[0]!.engine;
  const ep = { baseUrl: engine.baseUrl, key: '', model: 'devstral-small-2' };
  const { text } = await clineSystemPrompt(ep, Math.min(P.systemTokens, 1536), phase);
  return KEYS.map((_, u) => text.replace('/home/dev/project', `/home/user${u + 1}/project`));
}

/** Figure 10: see the head of this file. */
export async function teamCacheFigure(run: BenchRun, bed: Bed): Promise<void> {
  const netns = bed.testbed ? await canCreateNetns() : null;
  if (!bed.testbed || netns) {
    const why = netns
      ? `network namespaces cannot be created here (${netns})`
      : 'builds its own service (lb + 2 inference nodes on the tiny model): test-bed runs only';
    run.skip('10', 'team-cache-affinity', TITLE, '×', why);
    return;
  }
  run.mark('team');
  const service = await startService(bed, run.log);
  try {
    const rounds = run.opts.quick ? 3 : 6;
    const order = turnOrder(rounds);
    await applyLb(service, null);
    const affinity = await runPhase(service.lb, await systemPrompts(service, run.P, 'affinity'), order);
    await applyLb(service, (files) =>
      files.map((f) =>
        f.path.endsWith('team-upstream.conf') ? { ...f, text: f.text.replace(HASH_LINE, '# round robin') } : f,
      ),
    );
    if ((await readFile(upstreamPath(service.lb), 'utf8')).includes(HASH_LINE))
      throw new Error('round robin not applied');
    const roundRobin = await runPhase(service.lb, await systemPrompts(service, run.P, 'round-robin'), order);
    const a = share(affinity);
    const r = share(roundRobin);
    const ratio = a.share / r.share;
    const pct = (x: number) => `${fmt(x * 100, 1)} %`;
    run.log(
      `  affinity: ${pct(a.share)} of ${a.prompt} prompt tokens from cache; ` +
        `round robin: ${pct(r.share)} of ${r.prompt}`,
    );
    run.figures.push({
      n: '10',
      id: 'team-cache-affinity',
      title: TITLE,
      value: round(ratio, 3),
      unit: '×',
      detail:
        `key affinity (consistent hash on the key name) ${pct(a.share)} (${a.cached}/${a.prompt} tokens) ÷ ` +
        `round robin ${pct(r.share)} (${r.cached}/${r.prompt}); ${USERS} users × ${rounds} turns ` +
        'in a seeded random order, 2 inference nodes (1 slot each, host prompt cache as rendered), the tiny test model',
      verdict: ratio > 1 ? 'affinity serves more of the prompts from cache' : 'NO GAIN from affinity measured',
      data: { phase: 'team', affinity, roundRobin, order },
    });
  } finally {
    await service.stop();
  }
}
