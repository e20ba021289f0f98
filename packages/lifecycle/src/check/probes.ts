// The checks of `slm-copilot check`, one function each; every request has its own deadline.
import { httpsRequest, sseSplit, tlsHandshake, type Endpoint, type HttpAnswer } from './https.js';
import type { CheckTarget } from './target.js';

export type Status = 'pass' | 'fail' | 'info' | 'warn' | 'skip';

export interface CheckResult {
  id: 'tls' | 'readyz' | 'auth' | 'chat' | 'tool_call' | 'speed' | 'engine';
  title: string;
  /** The verdict counts only required checks. */
  required: boolean;
  status: Status;
  detail: string;
  data?: Record<string, unknown>;
}

/** Deadline of the requests that generate nothing. */
export const QUICK_MS = 10_000;
/** Tokens the streamed chat may generate (enough for a speed, short on a CPU). */
export const CHAT_MAX_TOKENS = 24;
/** Tokens the tool-call request may generate (a call with one short argument). */
export const TOOL_MAX_TOKENS = 64;

const CHAIN_ERRORS = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

const codeOf = (error: unknown) => String((error as NodeJS.ErrnoException).code ?? '');
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

export async function checkTls(target: CheckTarget): Promise<CheckResult> {
  const base = { id: 'tls', title: 'TLS', required: true } as const;
  const ep = target.endpoint;
  try {
    const facts = await tlsHandshake(ep, QUICK_MS);
    const detail =
      `chain verifies against ${target.caSource}; the certificate names ${ep.host} ` +
      `(${facts.protocol}, valid until ${facts.validTo})`;
    return { ...base, status: 'pass', detail, data: { names: facts.names, validTo: facts.validTo } };
  } catch (error) {
    const code = codeOf(error);
    const detail = CHAIN_ERRORS.has(code)
      ? `the chain does not verify against ${target.caSource}: ${code}`
      : code === 'ERR_TLS_CERT_ALTNAME_INVALID'
        ? `the certificate does not name ${ep.host}: ${messageOf(error)}`
        : `no TLS connection to ${ep.address ?? ep.host}:${ep.port}: ${messageOf(error)}`;
    return { ...base, status: 'fail', detail, data: { code } };
  }
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** `HTTP 401: Invalid API key.` from an OpenAI-shaped error body, else the start of the body. */
export function httpError(answer: HttpAnswer): string {
  const error = parseJson(answer.body)?.error as { message?: unknown } | undefined;
  const text = typeof error?.message === 'string' ? error.message : answer.body.trim().slice(0, 120);
  return `HTTP ${answer.status}${text ? `: ${text}` : ''}`;
}

export async function checkReady(ep: Endpoint): Promise<{ result: CheckResult; model?: string }> {
  const base = { id: 'readyz', title: 'readiness', required: true } as const;
  try {
    const answer = await httpsRequest(ep, { path: '/readyz', timeoutMs: QUICK_MS });
    const body = parseJson(answer.body);
    const model = typeof body?.model === 'string' ? body.model : undefined;
    if (answer.status === 200 && body?.status === 'ready')
      return { result: { ...base, status: 'pass', detail: `/readyz: ready (model ${model ?? '?'})` }, model };
    return { result: { ...base, status: 'fail', detail: `/readyz: ${httpError(answer)}` } };
  } catch (error) {
    return { result: { ...base, status: 'fail', detail: `/readyz: ${messageOf(error)}` } };
  }
}

export async function checkAuth(ep: Endpoint): Promise<CheckResult> {
  const base = { id: 'auth', title: 'auth', required: true } as const;
  try {
    const answer = await httpsRequest(ep, { path: '/v1/models', timeoutMs: QUICK_MS });
    const error = parseJson(answer.body)?.error as { message?: unknown } | undefined;
    if (answer.status === 401 && typeof error?.message === 'string')
      return { ...base, status: 'pass', detail: `a request without a key: ${httpError(answer)}` };
    const why = answer.status === 401 ? 'not an OpenAI-shaped error body' : 'expected 401';
    return { ...base, status: 'fail', detail: `a request without a key: ${httpError(answer)} (${why})` };
  } catch (error) {
    return { ...base, status: 'fail', detail: `a request without a key: ${messageOf(error)}` };
  }
}

/** The model to ask for: given, else the first one /v1/models lists (else why there is none). */
export async function modelToUse(
  target: CheckTarget,
  fromReady?: string,
): Promise<{ model: string } | { model?: undefined; why: string }> {
  const given = target.model ?? fromReady;
  if (given) return { model: given };
  try {
    const answer = await httpsRequest(target.endpoint, {
      path: '/v1/models',
      headers: { Authorization: `Bearer ${target.key}` },
      timeoutMs: QUICK_MS,
    });
    const data = parseJson(answer.body)?.data as Array<{ id?: unknown }> | undefined;
    const id = data?.[0]?.id;
    if (answer.status === 200 && typeof id === 'string') return { model: id };
    return { why: `/v1/models: ${answer.status === 200 ? 'no model listed' : httpError(answer)}` };
  } catch (error) {
    return { why: `/v1/models: ${messageOf(error)}` };
  }
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
}
interface Timings {
  cache_n?: number;
  prompt_n?: number;
  prompt_per_second?: number;
  predicted_n?: number;
  predicted_per_second?: number;
}

/** What the streamed chat saw: its text, usage chunk, engine timings and when the content arrived. */
export interface StreamFacts {
  text: string;
  usage?: Usage;
  timings?: Timings;
  firstContentMs?: number;
  lastContentMs?: number;
}

function readChunk(facts: StreamFacts, data: string, atMs: number): void {
  const chunk = parseJson(data);
  if (!chunk) return;
  const choices = chunk.choices as Array<{ delta?: { content?: unknown } }> | undefined;
  const content = choices?.[0]?.delta?.content;
  if (typeof content === 'string' && content.length > 0) {
    facts.text += content;
    facts.firstContentMs ??= atMs;
    facts.lastContentMs = atMs;
  }
  if (chunk.usage) facts.usage = chunk.usage as Usage;
  if (chunk.timings) facts.timings = chunk.timings as Timings;
}

export async function checkChat(
  target: CheckTarget,
  model: string,
  timeoutMs: number,
): Promise<{ result: CheckResult; facts?: StreamFacts }> {
  const base = { id: 'chat', title: 'chat stream', required: true } as const;
  const facts: StreamFacts = { text: '' };
  let buffer = '';
  const onData = (piece: string, atMs: number) => {
    const { events, rest } = sseSplit(buffer + piece);
    buffer = rest;
    for (const e of events) if (e !== '[DONE]') readChunk(facts, e, atMs);
  };
  try {
    const answer = await httpsRequest(target.endpoint, {
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { Authorization: `Bearer ${target.key}`, Accept: 'text/event-stream' },
      json: {
        model,
        messages: [{ role: 'user', content: 'Say hello in five words.' }],
        max_tokens: CHAT_MAX_TOKENS,
        stream: true,
        stream_options: { include_usage: true },
      },
      timeoutMs,
      onData,
    });
    if (answer.status !== 200) return { result: { ...base, status: 'fail', detail: httpError(answer) } };
    const preview = JSON.stringify(facts.text.length > 40 ? `${facts.text.slice(0, 40)}…` : facts.text);
    const usage = facts.usage
      ? `usage chunk: prompt ${facts.usage.prompt_tokens}, completion ${facts.usage.completion_tokens} tokens`
      : 'NO usage chunk';
    const ok = facts.text.length > 0 && (facts.usage?.completion_tokens ?? 0) > 0;
    const what = facts.text.length > 0 ? `${model} streamed ${preview}` : `${model} streamed NO content`;
    return { result: { ...base, status: ok ? 'pass' : 'fail', detail: `${what}; ${usage}` }, facts };
  } catch (error) {
    return { result: { ...base, status: 'fail', detail: messageOf(error) } };
  }
}

/** One function tool; only a real model decides to call it, so this check reports and never fails the verdict. */
const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

export async function checkToolCall(target: CheckTarget, model: string, timeoutMs: number): Promise<CheckResult> {
  const base = { id: 'tool_call', title: 'tool call', required: false } as const;
  try {
    const answer = await httpsRequest(target.endpoint, {
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { Authorization: `Bearer ${target.key}` },
      json: {
        model,
        messages: [{ role: 'user', content: 'What is the weather in Paris? Use the get_weather tool.' }],
        tools: [WEATHER_TOOL],
        max_tokens: TOOL_MAX_TOKENS,
      },
      timeoutMs,
    });
    if (answer.status !== 200) return { ...base, status: 'warn', detail: `a request with tools: ${httpError(answer)}` };
    const choices = parseJson(answer.body)?.choices as
      Array<{ message?: { tool_calls?: Array<{ function?: { name?: string; arguments?: string } }> } }> | undefined;
    const call = choices?.[0]?.message?.tool_calls?.[0]?.function;
    if (call?.name)
      return {
        ...base,
        status: 'pass',
        detail: `tool_calls: ${call.name}(${call.arguments ?? ''})`,
        data: { name: call.name, arguments: call.arguments },
      };
    return { ...base, status: 'info', detail: 'no tool call (the model chose text)' };
  } catch (error) {
    return { ...base, status: 'warn', detail: `a request with tools: ${messageOf(error)}` };
  }
}
