// Runs the checks in order, derives speed and engine lines, and prints one line each plus a verdict.
import {
  checkAuth,
  checkChat,
  checkReady,
  checkTls,
  checkToolCall,
  modelToUse,
  type CheckResult,
  type StreamFacts,
} from './probes.js';
import type { CheckTarget } from './target.js';

export interface CheckReport {
  verdict: 'pass' | 'fail';
  target: { url: string; address: string | null; ca: string; keySource: string; model: string | null };
  checks: CheckResult[];
}

const round = (n: number) => Math.round(n * 10) / 10;

/** Generation and prompt tok/s: the engine's own `timings` when it sent them, else timed from the stream. */
export function speedFrom(facts: StreamFacts | undefined): CheckResult {
  const base = { id: 'speed', title: 'speed', required: false } as const;
  if (!facts) return { ...base, status: 'skip', detail: 'no streamed reply to time' };
  const t = facts.timings;
  if (t?.predicted_per_second !== undefined && t.prompt_per_second !== undefined) {
    const data = {
      source: 'engine timings',
      generation: round(t.predicted_per_second),
      prompt: round(t.prompt_per_second),
    };
    const cached = t.cache_n ? `, ${t.cache_n} more from the prompt cache` : '';
    const detail =
      `generation ${data.generation} tok/s (${t.predicted_n} tokens), ` +
      `prompt ${data.prompt} tok/s (${t.prompt_n} tokens evaluated${cached}) — from the engine's timings`;
    return { ...base, status: 'info', detail, data };
  }
  const u = facts.usage;
  const first = facts.firstContentMs;
  const span = first !== undefined && facts.lastContentMs !== undefined ? facts.lastContentMs - first : 0;
  if (!u || first === undefined || u.completion_tokens < 2 || span <= 0)
    return { ...base, status: 'skip', detail: 'too few tokens streamed to time' };
  const data = {
    source: 'measured from the stream',
    generation: round((u.completion_tokens - 1) / (span / 1000)),
    prompt: round(u.prompt_tokens / (first / 1000)),
  };
  const detail =
    `generation ${data.generation} tok/s (${u.completion_tokens} tokens), ` +
    `prompt ${data.prompt} tok/s (${u.prompt_tokens} tokens; time to first token, network included) — ` +
    'measured from the stream';
  return { ...base, status: 'info', detail, data };
}

/** Which engine serves and whether it is a fallback: the report's `[Engine]` lines. */
export function engineFrom(target: CheckTarget): CheckResult {
  const base = { id: 'engine', title: 'engine', required: false } as const;
  const e = target.engine;
  if (!e.known) return { ...base, status: 'info', detail: e.why };
  const data = { serving: e.serving, requested: e.requested, fallback: e.fallback === 'yes' };
  if (data.fallback)
    return {
      ...base,
      status: 'warn',
      detail: `${e.serving} serves — FALLBACK: ${e.requested} was requested (${e.fallbackReason ?? 'no reason given'})`,
      data: { ...data, reason: e.fallbackReason },
    };
  return { ...base, status: 'info', detail: `${e.serving} serves (as requested; no fallback)`, data };
}

const skipped = (id: CheckResult['id'], title: string, required: boolean, why: string): CheckResult => ({
  id,
  title,
  required,
  status: 'skip',
  detail: why,
});

/** Runs every check in order; `onResult` sees each as it completes (a person watches a slow CPU). */
export async function runChecks(
  target: CheckTarget,
  generationTimeoutMs: number,
  onResult: (c: CheckResult) => void = () => {},
): Promise<CheckReport> {
  const ep = target.endpoint;
  const checks: CheckResult[] = [];
  const add = (...items: CheckResult[]) => {
    for (const c of items) onResult(c);
    checks.push(...items);
  };
  const tls = await checkTls(target);
  add(tls);
  let model: string | undefined = target.model;
  if (tls.status !== 'pass') {
    const why = 'skipped: no verified TLS connection';
    add(skipped('readyz', 'readiness', true, why), skipped('auth', 'auth', true, why));
    add(skipped('chat', 'chat stream', true, why), skipped('tool_call', 'tool call', false, why), speedFrom(undefined));
  } else {
    const ready = await checkReady(ep);
    add(ready.result, await checkAuth(ep));
    const chosen = await modelToUse(target, ready.model);
    model = chosen.model;
    if (chosen.model === undefined) {
      const detail = `no model id to ask for (${chosen.why}); give --model`;
      add({ id: 'chat', title: 'chat stream', required: true, status: 'fail', detail });
      add(skipped('tool_call', 'tool call', false, 'skipped: no model id'), speedFrom(undefined));
    } else {
      const chat = await checkChat(target, chosen.model, generationTimeoutMs);
      add(chat.result);
      add(await checkToolCall(target, chosen.model, generationTimeoutMs), speedFrom(chat.facts));
    }
  }
  add(engineFrom(target));
  const verdict = checks.every((c) => !c.required || c.status === 'pass') ? 'pass' : 'fail';
  const where = { url: ep.origin, address: ep.address ?? null, ca: target.caSource, keySource: target.keySource };
  return { verdict, target: { ...where, model: model ?? null }, checks };
}

/** The first line: what is checked, with what (the key's source, never the key). */
export function formatHeader(target: CheckTarget): string {
  const ep = target.endpoint;
  const via = ep.address ? ` via ${ep.address}` : '';
  return `checking ${ep.origin}${via} (key from ${target.keySource}, CA: ${target.caSource})`;
}

export const formatLine = (c: CheckResult): string =>
  `${c.status.toUpperCase().padEnd(4)}  ${c.title.padEnd(12)} ${c.detail}`;

export function formatVerdict(report: CheckReport): string {
  const required = report.checks.filter((c) => c.required);
  const failed = required.filter((c) => c.status !== 'pass');
  return failed.length === 0
    ? `verdict: PASS (${required.length} of ${required.length} required checks passed)`
    : `verdict: FAIL (${failed.length} of ${required.length} required checks did not pass: ` +
        `${failed.map((c) => c.id).join(', ')})`;
}
