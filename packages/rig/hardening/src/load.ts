// 5. Load: N concurrent streaming clients through nginx (TLS, the appliance's rate limit) to the real
// llama-server with fewer slots than clients. Every stream must end with [DONE] or get a clean JSON
// 429/503 — none truncated; the rate limit must hold; nginx's and the engine's resident memory
// (VmRSS, nginx master + workers summed) is sampled every 10 s and must not grow by 10 % or more
// from the first to the last minute (full run only).
//
//   pnpm --filter @slm-copilot/hardening load                # full: 32 clients, 5 minutes
//   pnpm --filter @slm-copilot/hardening load -- --quick     # 8 clients, 45 s (what the test runs)
//   … load -- --clients 16 --duration 120 --parallel 2 --rate-limit 120 --max-tokens 48 --json
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { appliancePaths, parseContext } from '@slm-copilot/context-schema';
import { llamaServerArgs, loadChatTemplate, modelFactsFromManifest, planEngine } from '@slm-copilot/localai-install';
import { buildManifest } from '@slm-copilot/model-fetch';
import { ensureSelfSigned } from '@slm-copilot/nginx-config';
import { lookupTo } from '@slm-copilot/nginx-config/test-support/client';
import {
  freePort,
  removeTempRoots,
  startGateway,
  tempRoot,
  type Gateway,
} from '@slm-copilot/nginx-config/test-support/nginx';
import { ensureLlamaBuild, ensureTinyModel, startLlamaServer, type LlamaServer } from '@slm-copilot/testbed';
import { testHost } from './test-support/appliance.js';
import { quietLog } from './test-support/quiet-log.js';

export interface LoadOptions {
  clients: number;
  durationSeconds: number;
  /** llama-server slots (fewer than clients). */
  parallel: number;
  /** ONEAPP_COPILOT_RATE_LIMIT (requests per minute per key). */
  rateLimitPerMinute: number;
  maxTokens: number;
  sampleEverySeconds: number;
  /** Flags added to the appliance's llama-server command line (e.g. `--cache-ram 0`). */
  engineExtraArgs: string[];
  /** Print progress lines to stderr. */
  verbose: boolean;
}

export const QUICK: LoadOptions = {
  clients: 8,
  durationSeconds: 45,
  parallel: 2,
  rateLimitPerMinute: 120,
  maxTokens: 48,
  sampleEverySeconds: 10,
  engineExtraArgs: [],
  verbose: false,
};
export const FULL: LoadOptions = {
  clients: 32,
  durationSeconds: 300,
  parallel: 2,
  rateLimitPerMinute: 120,
  maxTokens: 48,
  sampleEverySeconds: 10,
  engineExtraArgs: [],
  verbose: true,
};

export interface MemorySample {
  atSeconds: number;
  nginxKb: number;
  nginxProcesses: number;
  engineKb: number;
}

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
  /** (mean of the last minute − mean of the first minute) / mean of the first minute; null when the run is under 2 minutes. */
  growth: { nginx: number; engine: number } | null;
  /** nginx's [error]-level lines (limit_req warnings excluded), to explain anything in `other`. */
  gatewayErrors: string[];
  problems: string[];
}

async function rssKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
}

/** nginx's master and all its children (the workers; cache helpers if any). */
async function nginxRss(masterPid: number): Promise<{ kb: number; processes: number }> {
  let kids: number[] = [];
  for (const t of await readdir(`/proc/${masterPid}/task`).catch(() => [] as string[])) {
    const text = await readFile(`/proc/${masterPid}/task/${t}/children`, 'utf8').catch(() => '');
    kids = kids.concat(text.split(/\s+/).filter(Boolean).map(Number));
  }
  let kb = await rssKb(masterPid);
  for (const k of kids) kb += await rssKb(k);
  return { kb, processes: 1 + kids.length };
}

type Outcome =
  | { kind: 'completed' }
  | { kind: '429' }
  | { kind: '503' }
  | { kind: 'truncated'; why: string }
  | { kind: 'other'; status: number | string; body: string };

function isOpenAiError(body: string): boolean {
  try {
    return typeof (JSON.parse(body) as { error?: { message?: unknown } }).error?.message === 'string';
  } catch {
    return false;
  }
}

/** One streamed chat completion; classifies how it ended. */
function streamOnce(
  url: string,
  key: string,
  agent: Agent,
  maxTokens: number,
  host: string,
): Promise<{ outcome: Outcome; retryAfter: number }> {
  const body = JSON.stringify({
    model: 'devstral-small-2',
    messages: [{ role: 'user', content: 'Count to fifty.' }],
    max_tokens: maxTokens,
    stream: true,
  });
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json', Host: host },
        timeout: 120_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        const finish = (transportError: string | null) => {
          const status = res.statusCode ?? 0;
          const retryAfter = Number(res.headers['retry-after'] ?? 1) || 1;
          if (status === 200) {
            const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
            const done = events.at(-1) === 'data: [DONE]';
            const finished = events.some((e) => /"finish_reason":"(length|stop)"/.test(e));
            if (transportError || !res.complete)
              return resolve({
                outcome: { kind: 'truncated', why: transportError ?? 'incomplete chunked body' },
                retryAfter,
              });
            if (!done || !finished)
              return resolve({
                outcome: {
                  kind: 'truncated',
                  why: `ended without ${done ? 'a finish_reason' : '[DONE]'} after ${events.length} events`,
                },
                retryAfter,
              });
            return resolve({ outcome: { kind: 'completed' }, retryAfter });
          }
          if ((status === 429 || status === 503) && isOpenAiError(text))
            return resolve({ outcome: { kind: status === 429 ? '429' : '503' }, retryAfter });
          resolve({ outcome: { kind: 'other', status, body: text.slice(0, 300) }, retryAfter });
        };
        res.on('end', () => finish(null));
        res.on('aborted', () => finish('aborted'));
        res.on('error', (e) => finish(e.message));
      },
    );
    req.on('timeout', () => req.destroy(new Error('client timeout (120 s)')));
    req.on('error', (e) =>
      resolve({ outcome: { kind: 'other', status: `error: ${e.message}`, body: '' }, retryAfter: 1 }),
    );
    req.end(body);
  });
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

export async function runLoad(opts: LoadOptions): Promise<LoadReport> {
  const say = (m: string) => opts.verbose && process.stderr.write(`[load] ${m}\n`);
  const HOST = 'copilot.example.test';
  const KEY = 'sk-hardening-load-0123456789';
  const llama = await ensureLlamaBuild({ variant: 'dispatch' });
  const model = await ensureTinyModel({ llama });
  const root = await tempRoot('hardening-load');
  const paths = appliancePaths(root);
  const ss = await ensureSelfSigned({ paths, hostname: HOST, ipAddresses: [], log: quietLog });
  const ca = await readFile(paths.tls.caCert, 'utf8');
  const enginePort = await freePort();
  let engine: LlamaServer | undefined;
  let gw: Gateway | undefined;
  try {
    // The engine exactly as the appliance runs it (localai-install's command line for the plan), on the tiny model.
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
    engine = await startLlamaServer({
      binary: llama.llamaServer,
      port: enginePort,
      args: [...args, ...opts.engineExtraArgs],
    });
    say(`llama-server ${[...args, ...opts.engineExtraArgs].join(' ')}`);
    gw = await startGateway({
      root,
      tls: ss.served,
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
    const burst = Math.floor(opts.rateLimitPerMinute / 10);
    say(
      `nginx pid ${gw.process.pid} on :${gw.httpsPort} → llama-server pid ${engine.pid} (--parallel ${opts.parallel}); ${opts.clients} clients for ${opts.durationSeconds} s; limit ${opts.rateLimitPerMinute}/min burst ${burst}`,
    );

    const url = `https://${HOST}:${gw.httpsPort}/v1/chat/completions`;
    const memory: MemorySample[] = [];
    const t0 = performance.now();
    const elapsed = () => (performance.now() - t0) / 1000;
    const sample = async () => {
      const n = await nginxRss(gw!.process.pid!);
      memory.push({
        atSeconds: Math.round(elapsed()),
        nginxKb: n.kb,
        nginxProcesses: n.processes,
        engineKb: await rssKb(engine!.pid),
      });
      const m = memory.at(-1)!;
      say(`t=${m.atSeconds}s nginx ${m.nginxKb} kB (${m.nginxProcesses} processes), engine ${m.engineKb} kB`);
    };
    await sample();
    const sampler = setInterval(() => void sample(), opts.sampleEverySeconds * 1000);

    const counts = { requests: 0, completed: 0, r429: 0, r503: 0, truncated: 0 };
    const other: LoadReport['other'] = [];
    const truncations: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const deadline = t0 + opts.durationSeconds * 1000;
    const client = async (i: number) => {
      // Each client keeps its connection, like an IDE does.
      const agent = new Agent({ ca, keepAlive: true, maxSockets: 1, lookup: lookupTo('127.0.0.1') });
      await new Promise((r) => setTimeout(r, (i * 50) % 1000));
      while (performance.now() < deadline) {
        counts.requests++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const { outcome, retryAfter } = await streamOnce(url, KEY, agent, opts.maxTokens, `${HOST}:${gw!.httpsPort}`);
        inFlight--;
        if (outcome.kind === 'completed') counts.completed++;
        else if (outcome.kind === '429') counts.r429++;
        else if (outcome.kind === '503') counts.r503++;
        else if (outcome.kind === 'truncated') {
          counts.truncated++;
          truncations.push(outcome.why);
        } else other.push({ status: outcome.status, body: outcome.body });
        // A polite client honours Retry-After; a completed one asks again at once.
        if (outcome.kind === '429' || outcome.kind === '503')
          await new Promise((r) => setTimeout(r, retryAfter * 1000));
      }
      agent.destroy();
    };
    await Promise.all(Array.from({ length: opts.clients }, (_, i) => client(i)));
    clearInterval(sampler);
    await sample();
    const seconds = elapsed();

    const allowedMax = burst + Math.ceil((opts.rateLimitPerMinute * seconds) / 60) + 1;
    const expected429 = Math.max(0, counts.requests - counts.r503 - other.length - allowedMax);
    let growth: LoadReport['growth'] = null;
    if (seconds >= 120) {
      const first = memory.filter((m) => m.atSeconds <= 60);
      const last = memory.filter((m) => m.atSeconds >= seconds - 60);
      const g = (k: 'nginxKb' | 'engineKb') =>
        (mean(last.map((m) => m[k])) - mean(first.map((m) => m[k]))) / mean(first.map((m) => m[k]));
      growth = { nginx: g('nginxKb'), engine: g('engineKb') };
    }
    const gatewayErrors = (await gw.errorLog())
      .split('\n')
      .filter((l) => /\[(error|crit|alert|emerg)\]/.test(l))
      .slice(-20);
    const problems: string[] = [];
    if (counts.truncated > 0)
      problems.push(`${counts.truncated} truncated stream(s): ${[...new Set(truncations)].slice(0, 5).join('; ')}`);
    if (other.length > 0)
      problems.push(
        `${other.length} request(s) neither completed nor a clean 429/503: ${JSON.stringify(other.slice(0, 3))}`,
      );
    if (counts.completed === 0) problems.push('no stream completed');
    if (counts.completed > allowedMax)
      problems.push(`the rate limit did not hold: ${counts.completed} completed > ${allowedMax} allowed`);
    if (counts.r429 < expected429) problems.push(`too few 429s: ${counts.r429} < ${expected429} expected`);
    if (growth && (growth.nginx >= 0.1 || growth.engine >= 0.1))
      problems.push(
        `resident memory grew ≥ 10 %: nginx ${(growth.nginx * 100).toFixed(1)} %, engine ${(growth.engine * 100).toFixed(1)} %`,
      );
    return {
      options: opts,
      seconds,
      requests: counts.requests,
      completed: counts.completed,
      rejected429: counts.r429,
      rejected503: counts.r503,
      truncated: counts.truncated,
      other,
      maxInFlight,
      allowedMax,
      expected429,
      memory,
      growth,
      gatewayErrors,
      problems,
    };
  } finally {
    await gw?.stop();
    await engine?.stop();
  }
}

export function summary(r: LoadReport): string {
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
  const mem = r.memory.length
    ? `nginx ${r.memory[0]!.nginxKb}→${r.memory.at(-1)!.nginxKb} kB, engine ${r.memory[0]!.engineKb}→${r.memory.at(-1)!.engineKb} kB`
    : 'no samples';
  return [
    `load: ${r.options.clients} clients, ${r.seconds.toFixed(0)} s, llama-server --parallel ${r.options.parallel}, limit ${r.options.rateLimitPerMinute}/min`,
    `  requests ${r.requests}: completed with [DONE] ${r.completed}, 429 ${r.rejected429} (≥ ${r.expected429} expected; successes allowed ≤ ${r.allowedMax}), 503 ${r.rejected503}, truncated ${r.truncated}, other ${r.other.length}; max in flight ${r.maxInFlight}`,
    `  memory (VmRSS, ${r.memory.length} samples every ${r.options.sampleEverySeconds} s): ${mem}${r.growth ? `; first→last minute: nginx ${pct(r.growth.nginx)}, engine ${pct(r.growth.engine)}` : ''}`,
    r.problems.length ? `  PROBLEMS:\n${r.problems.map((p) => `    - ${p}`).join('\n')}` : '  ok',
    ...(r.gatewayErrors.length ? [`  nginx errors:\n${r.gatewayErrors.map((l) => `    ${l}`).join('\n')}`] : []),
  ].join('\n');
}

function parseArgs(argv: string[]): LoadOptions & { json: boolean } {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout
      .write(`Usage: load [--quick] [--clients N] [--duration S] [--parallel N] [--rate-limit N] [--max-tokens N]
            [--engine-arg "FLAG [VALUE]"]... [--json]

N concurrent streaming clients through nginx (TLS) to llama-server (tiny test GGUF; the appliance's
own command line from localai-install, plus any --engine-arg) with fewer slots than clients. Fails (exit 1) on a truncated stream, a response other than [DONE]/JSON 429/503, a rate
limit that does not hold, or resident memory growing >= 10 % from the first to the last minute.
Defaults: ${FULL.clients} clients, ${FULL.durationSeconds} s, --parallel ${FULL.parallel}, ${FULL.rateLimitPerMinute}/min. --quick: ${QUICK.clients} clients, ${QUICK.durationSeconds} s.
`);
    process.exit(0);
  }
  const o = { ...(argv.includes('--quick') ? QUICK : FULL), verbose: true, json: argv.includes('--json') };
  const num = (flag: string) => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 0) throw new Error(`${flag} needs a whole number`);
    return v;
  };
  o.clients = num('--clients') ?? o.clients;
  o.durationSeconds = num('--duration') ?? o.durationSeconds;
  o.parallel = num('--parallel') ?? o.parallel;
  o.rateLimitPerMinute = num('--rate-limit') ?? o.rateLimitPerMinute;
  o.maxTokens = num('--max-tokens') ?? o.maxTokens;
  o.engineExtraArgs = argv.flatMap((a, i) => (argv[i - 1] === '--engine-arg' ? a.split(' ') : []));
  return o;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const { json, ...opts } = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
  runLoad(opts)
    .then((r) => {
      process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : `${summary(r)}\n`);
      removeTempRoots();
      process.exit(r.problems.length ? 1 : 0);
    })
    .catch((e: unknown) => {
      process.stderr.write(`load: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(2);
    });
}
