// 5. Load: N concurrent streaming clients through nginx (TLS, the appliance's rate limit) to the real
// llama-server with fewer slots than clients. Every stream must end with [DONE] or get a clean JSON
// 429/503 — none truncated; the rate limit must hold; nginx's and the engine's resident memory
// (VmRSS, nginx master + workers summed) is sampled every 10 s and must not grow by 10 % or more
// from the first to the last minute (full run only). The command line: `load` in cli.ts.
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { appliancePaths, parseContext, type AppliancePaths } from '@slm-copilot/context-schema';
import { llamaServerArgs, loadChatTemplate, modelFactsFromManifest, planEngine } from '@slm-copilot/localai-install';
import { buildManifest } from '@slm-copilot/model-fetch';
import { ensureSelfSigned } from '@slm-copilot/nginx-config';
import { lookupTo } from '@slm-copilot/nginx-config/test-support/client';
import { startGateway, tempRoot, type Gateway } from '@slm-copilot/nginx-config/test-support/nginx';
import { freePort } from '@slm-copilot/task-kit';
import {
  ensureLlamaBuild,
  ensureTinyModel,
  startLlamaServer,
  type LlamaBuild,
  type LlamaServer,
} from '@slm-copilot/testbed';
import { memoryGrowth, nginxRss, rssKb, type MemorySample } from './load-memory.js';
import type { LoadOptions } from './load-options.js';
import { streamOnce } from './load-stream.js';
import { testHost } from './test-support/appliance.js';
import { quietLog } from '@slm-copilot/task-kit/test-support/log';

export type { MemorySample } from './load-memory.js';
export { FULL, QUICK, type LoadOptions } from './load-options.js';

export interface LoadReport {
  options: LoadOptions;
  seconds: number;
  requests: number;
  /** 200 streams that ended with `data: [DONE]` after a finish_reason. */
  completed: number;
  /** 429 with an OpenAI-shaped JSON body (rate or connection limit). */
  rejected429: number;
  /** 503 with an OpenAI-shaped JSON body. */
  rejected503: number;
  /** 200 streams that ended without [DONE], or cut at the transport level. */
  truncated: number;
  /** Anything else (other statuses, 429/503 without JSON, connection errors). */
  other: Array<{ status: number | string; body: string }>;
  /** Most requests in flight at once (as the clients saw it). */
  maxInFlight: number;
  /** The rate limit's ceiling on successes for this run: burst + rate × elapsed. */
  allowedMax: number;
  /** 429s the rate limit must at least have produced: requests − allowedMax. */
  expected429: number;
  memory: MemorySample[];
  /**
   * (mean of the last minute − mean of the first minute) / mean of the first minute; null when the run
   * is under 2 minutes.
   */
  growth: { nginx: number; engine: number } | null;
  /** nginx's [error]-level lines (limit_req warnings excluded), to explain anything in `other`. */
  gatewayErrors: string[];
  problems: string[];
}

const HOST = 'copilot.example.test';
const KEY = 'sk-hardening-load-0123456789';

/** What the run started (stopped by runLoad whatever happens). */
interface Live {
  engine?: LlamaServer;
  gw?: Gateway;
}

type Say = (m: string) => void;

/** The engine exactly as the appliance runs it (localai-install's command line for the plan), on the tiny model. */
async function startEngine(
  opts: LoadOptions,
  llama: LlamaBuild,
  model: { path: string; sha256: string },
  paths: AppliancePaths,
  enginePort: number,
  say: Say,
): Promise<LlamaServer> {
  const engineConfig = parseContext({
    ONEAPP_COPILOT_ENGINE: 'llama-server',
    ONEAPP_COPILOT_PARALLEL: String(opts.parallel),
    ONEAPP_COPILOT_CONTEXT_SIZE: '2048',
    ONEAPP_COPILOT_THREADS: '1',
  });
  await mkdir(paths.modelsDir, { recursive: true });
  const modelFile = `${paths.modelsDir}/tiny.gguf`;
  await symlink(model.path, modelFile);
  const facts = modelFactsFromManifest(await buildManifest(modelFile, { sha256: model.sha256 }));
  await mkdir(paths.configDir, { recursive: true });
  await writeFile(paths.engine.chatTemplate, await loadChatTemplate());
  const applianceArgs = llamaServerArgs(engineConfig, planEngine(engineConfig, facts, testHost), facts, paths);
  const args = applianceArgs.filter(
    (a, i) => !['--host', '--port'].includes(a) && !['--host', '--port'].includes(applianceArgs[i - 1] ?? ''),
  );
  const engine = await startLlamaServer({
    binary: llama.llamaServer,
    port: enginePort,
    args: [...args, ...opts.engineExtraArgs],
  });
  say(`llama-server ${[...args, ...opts.engineExtraArgs].join(' ')}`);
  return engine;
}

/** The gateway on the real nginx with the run's rate and connection limits. */
function startLoadGateway(
  opts: LoadOptions,
  root: string,
  paths: AppliancePaths,
  enginePort: number,
  tls: { certificate: string; key: string },
): Promise<Gateway> {
  return startGateway({
    root,
    tls,
    trustFile: paths.tls.caCert,
    enginePort,
    keys: { main: KEY, extra: [] },
    env: {
      ONEAPP_COPILOT_PASSWORD: KEY,
      ONEAPP_COPILOT_ENGINE: 'llama-server',
      ONEAPP_COPILOT_HOSTNAME: HOST,
      ONEAPP_COPILOT_TLS_MODE: 'self-signed',
      ONEAPP_COPILOT_RATE_LIMIT: String(opts.rateLimitPerMinute),
      ONEAPP_COPILOT_CONNECTION_LIMIT: String(Math.max(opts.clients, 1)),
    },
  });
}

/** What the clients counted. */
interface Tally {
  requests: number;
  completed: number;
  r429: number;
  r503: number;
  truncated: number;
  other: LoadReport['other'];
  truncations: string[];
  maxInFlight: number;
}

/** Runs `opts.clients` polite streaming clients until the deadline. */
async function driveClients(opts: LoadOptions, gw: Gateway, ca: string, deadline: number): Promise<Tally> {
  const tally: Tally = {
    requests: 0,
    completed: 0,
    r429: 0,
    r503: 0,
    truncated: 0,
    other: [],
    truncations: [],
    maxInFlight: 0,
  };
  const url = `https://${HOST}:${gw.httpsPort}/v1/chat/completions`;
  let inFlight = 0;
  const client = async (i: number) => {
    // Each client keeps its connection, like an IDE does.
    const agent = new Agent({ ca, keepAlive: true, maxSockets: 1, lookup: lookupTo('127.0.0.1') });
    await new Promise((r) => setTimeout(r, (i * 50) % 1000));
    while (performance.now() < deadline) {
      tally.requests++;
      inFlight++;
      tally.maxInFlight = Math.max(tally.maxInFlight, inFlight);
      const { outcome, retryAfter } = await streamOnce(url, KEY, agent, opts.maxTokens, `${HOST}:${gw.httpsPort}`);
      inFlight--;
      if (outcome.kind === 'completed') tally.completed++;
      else if (outcome.kind === '429') tally.r429++;
      else if (outcome.kind === '503') tally.r503++;
      else if (outcome.kind === 'truncated') {
        tally.truncated++;
        tally.truncations.push(outcome.why);
      } else tally.other.push({ status: outcome.status, body: outcome.body });
      // A polite client honours Retry-After; a completed one asks again at once.
      if (outcome.kind === '429' || outcome.kind === '503') await new Promise((r) => setTimeout(r, retryAfter * 1000));
    }
    agent.destroy();
  };
  await Promise.all(Array.from({ length: opts.clients }, (_, i) => client(i)));
  return tally;
}

/** What went wrong, in words (empty: the run passed). */
function problemsOf(t: Tally, allowedMax: number, expected429: number, growth: LoadReport['growth']): string[] {
  const problems: string[] = [];
  if (t.truncated > 0)
    problems.push(`${t.truncated} truncated stream(s): ${[...new Set(t.truncations)].slice(0, 5).join('; ')}`);
  if (t.other.length > 0)
    problems.push(
      `${t.other.length} request(s) neither completed nor a clean 429/503: ${JSON.stringify(t.other.slice(0, 3))}`,
    );
  if (t.completed === 0) problems.push('no stream completed');
  if (t.completed > allowedMax)
    problems.push(`the rate limit did not hold: ${t.completed} completed > ${allowedMax} allowed`);
  if (t.r429 < expected429) problems.push(`too few 429s: ${t.r429} < ${expected429} expected`);
  if (growth && (growth.nginx >= 0.1 || growth.engine >= 0.1))
    problems.push(
      `resident memory grew ≥ 10 %: nginx ${(growth.nginx * 100).toFixed(1)} %, ` +
        `engine ${(growth.engine * 100).toFixed(1)} %`,
    );
  return problems;
}

/** Drives the clients against the running gateway and engine, sampling memory, and judges the run. */
async function measure(opts: LoadOptions, engine: LlamaServer, gw: Gateway, ca: string, say: Say) {
  const memory: MemorySample[] = [];
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  const sample = async () => {
    const n = await nginxRss(gw.process.pid!);
    memory.push({
      atSeconds: Math.round(elapsed()),
      nginxKb: n.kb,
      nginxProcesses: n.processes,
      engineKb: await rssKb(engine.pid),
    });
    const m = memory.at(-1)!;
    say(`t=${m.atSeconds}s nginx ${m.nginxKb} kB (${m.nginxProcesses} processes), engine ${m.engineKb} kB`);
  };
  await sample();
  const sampler = setInterval(() => void sample(), opts.sampleEverySeconds * 1000);
  const t = await driveClients(opts, gw, ca, t0 + opts.durationSeconds * 1000);
  clearInterval(sampler);
  await sample();
  const seconds = elapsed();
  const burst = Math.floor(opts.rateLimitPerMinute / 10);
  const allowedMax = burst + Math.ceil((opts.rateLimitPerMinute * seconds) / 60) + 1;
  const expected429 = Math.max(0, t.requests - t.r503 - t.other.length - allowedMax);
  const growth = memoryGrowth(memory, seconds);
  const gatewayErrors = (await gw.errorLog())
    .split('\n')
    .filter((l) => /\[(error|crit|alert|emerg)\]/.test(l))
    .slice(-20);
  const report: LoadReport = {
    options: opts,
    seconds,
    requests: t.requests,
    completed: t.completed,
    rejected429: t.r429,
    rejected503: t.r503,
    truncated: t.truncated,
    other: t.other,
    maxInFlight: t.maxInFlight,
    allowedMax,
    expected429,
    memory,
    growth,
    gatewayErrors,
    problems: problemsOf(t, allowedMax, expected429, growth),
  };
  return report;
}

export async function runLoad(opts: LoadOptions): Promise<LoadReport> {
  const say: Say = (m) => void (opts.verbose && process.stderr.write(`[load] ${m}\n`));
  const llama = await ensureLlamaBuild({ variant: 'dispatch' });
  const model = await ensureTinyModel({ llama });
  const root = await tempRoot('hardening-load');
  const paths = appliancePaths(root);
  const ss = await ensureSelfSigned({ paths, hostname: HOST, ipAddresses: [], log: quietLog });
  const ca = await readFile(paths.tls.caCert, 'utf8');
  const enginePort = await freePort();
  const live: Live = {};
  try {
    const engine = (live.engine = await startEngine(opts, llama, model, paths, enginePort, say));
    const gw = (live.gw = await startLoadGateway(opts, root, paths, enginePort, ss.served));
    say(
      `nginx pid ${gw.process.pid} on :${gw.httpsPort} → llama-server pid ${engine.pid} ` +
        `(--parallel ${opts.parallel}); ${opts.clients} clients for ${opts.durationSeconds} s; ` +
        `limit ${opts.rateLimitPerMinute}/min burst ${Math.floor(opts.rateLimitPerMinute / 10)}`,
    );
    return await measure(opts, engine, gw, ca, say);
  } finally {
    await live.gw?.stop();
    await live.engine?.stop();
  }
}

export function summary(r: LoadReport): string {
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
  const first = r.memory[0];
  const last = r.memory.at(-1);
  const mem =
    first && last
      ? `nginx ${first.nginxKb}→${last.nginxKb} kB, engine ${first.engineKb}→${last.engineKb} kB`
      : 'no samples';
  const growth = r.growth ? `; first→last minute: nginx ${pct(r.growth.nginx)}, engine ${pct(r.growth.engine)}` : '';
  return [
    `load: ${r.options.clients} clients, ${r.seconds.toFixed(0)} s, llama-server --parallel ${r.options.parallel}, ` +
      `limit ${r.options.rateLimitPerMinute}/min`,
    `  requests ${r.requests}: completed with [DONE] ${r.completed}, ` +
      `429 ${r.rejected429} (≥ ${r.expected429} expected; successes allowed ≤ ${r.allowedMax}), ` +
      `503 ${r.rejected503}, truncated ${r.truncated}, other ${r.other.length}; max in flight ${r.maxInFlight}`,
    `  memory (VmRSS, ${r.memory.length} samples every ${r.options.sampleEverySeconds} s): ${mem}${growth}`,
    r.problems.length ? `  PROBLEMS:\n${r.problems.map((p) => `    - ${p}`).join('\n')}` : '  ok',
    ...(r.gatewayErrors.length ? [`  nginx errors:\n${r.gatewayErrors.map((l) => `    ${l}`).join('\n')}`] : []),
  ].join('\n');
}
