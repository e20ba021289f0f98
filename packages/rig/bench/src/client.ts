// How the bench talks to an endpoint: the official `openai` client (as Cline does) over a fetch that
// opens a fresh TCP + TLS connection per request and verifies the certificate against the given CA;
// and a raw node:http(s) request for time-to-first-token, so client overhead is the same both ways.
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createSseParser } from '@slm-copilot/nginx-config/test-support/client';
import { fetchOver, lookupTo } from '@slm-copilot/testbed';
import OpenAI from 'openai';

export interface Endpoint {
  /** Base URL without `/v1`, e.g. `https://localhost:8443` or `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** API key (Bearer); empty for the engine directly. */
  key: string;
  /** PEM to trust for https (the appliance CA); undefined = the system's CAs. */
  ca?: string;
  /** Connect to this address whatever the host name resolves to (the test bed: 127.0.0.1). */
  resolveTo?: string;
  model: string;
}

export { lookupTo };

/** Sends one request on a NEW connection (no keep-alive): TCP, and for https a full TLS handshake. */
export function freshRequest(
  ep: Endpoint,
  url: string,
  init: { method?: string; headers?: RequestOptions['headers'] },
  onResponse: (res: IncomingMessage) => void,
): ClientRequest {
  const u = new URL(url);
  const lookup = ep.resolveTo ? { lookup: lookupTo(ep.resolveTo) } : {};
  if (u.protocol === 'https:') {
    const agent = new HttpsAgent({ keepAlive: false, ...(ep.ca ? { ca: ep.ca } : {}), ...lookup });
    return httpsRequest(url, { method: init.method, headers: init.headers, agent }, onResponse);
  }
  return httpRequest(url, { method: init.method, headers: init.headers, agent: false, ...lookup }, onResponse);
}

/** A `fetch` for the openai SDK built on {@link freshRequest} (certificate and host name verified as usual). */
export function endpointFetch(ep: Endpoint): typeof fetch {
  return fetchOver((url, options, onResponse) => freshRequest(ep, url, options, onResponse));
}

export function openaiClient(ep: Endpoint): OpenAI {
  return new OpenAI({
    baseURL: `${ep.baseUrl}/v1`,
    apiKey: ep.key || 'none',
    fetch: endpointFetch(ep),
    maxRetries: 0,
    timeout: 60 * 60_000,
  });
}

/** llama-server's `timings` object (sent with the last streamed chunk). */
export interface EngineTimings {
  prompt_n?: number;
  prompt_ms?: number;
  prompt_per_second?: number;
  predicted_n?: number;
  predicted_ms?: number;
  predicted_per_second?: number;
  cache_n?: number;
}

export interface StreamResult {
  /** ms from the request to the first content delta. */
  ttftMs: number;
  /** ms from the request to the last content delta. */
  lastMs: number;
  /** Deltas that carried text. */
  contentChunks: number;
  completionTokens: number;
  promptTokens: number;
  cachedTokens: number | null;
  /** Generation rate seen by the client: tokens after the first ÷ the time after the first. */
  genTokensPerSecond: number;
  text: string;
  timings: EngineTimings | null;
}

export type ChatMessage = OpenAI.Chat.Completions.ChatCompletionMessageParam;

/** One streamed chat completion, as Cline sends it (stream + include_usage); timestamps every delta. */
export async function streamChat(
  client: OpenAI,
  model: string,
  messages: ChatMessage[],
  opts: { maxTokens: number; extra?: Record<string, unknown>; tools?: OpenAI.Chat.Completions.ChatCompletionTool[] },
): Promise<StreamResult> {
  const t0 = performance.now();
  const body = {
    model,
    messages,
    max_tokens: opts.maxTokens,
    temperature: 0,
    stream: true as const,
    stream_options: { include_usage: true },
    ...(opts.tools ? { tools: opts.tools } : {}),
    ...opts.extra,
  };
  const stream = await client.chat.completions.create(body);
  let first: number | undefined;
  let last = 0;
  let chunks = 0;
  let text = '';
  let usage: OpenAI.Completions.CompletionUsage | undefined;
  let timings: EngineTimings | null = null;
  for await (const chunk of stream) {
    const now = performance.now() - t0;
    const delta = chunk.choices[0]?.delta as { content?: string | null; reasoning_content?: string | null } | undefined;
    const piece = (delta?.content ?? '') + (delta?.reasoning_content ?? '');
    if (piece) {
      first ??= now;
      last = now;
      chunks++;
      text += piece;
    }
    if (chunk.usage) usage = chunk.usage;
    const t = (chunk as unknown as { timings?: EngineTimings }).timings;
    if (t) timings = t;
  }
  if (first === undefined) throw new Error('the stream carried no content');
  const completionTokens = usage?.completion_tokens ?? chunks;
  const after = Math.max(1, completionTokens - 1);
  return {
    ttftMs: first,
    lastMs: last,
    contentChunks: chunks,
    completionTokens,
    promptTokens: usage?.prompt_tokens ?? 0,
    cachedTokens:
      (usage as { prompt_tokens_details?: { cached_tokens?: number } } | undefined)?.prompt_tokens_details
        ?.cached_tokens ?? null,
    genTokensPerSecond: last > first ? after / ((last - first) / 1000) : NaN,
    text,
    timings,
  };
}

/**
 * Time to first token with a raw request on a fresh connection: ms from sending the request to the
 * first SSE event that carries a content delta.
 */
export function rawTtft(ep: Endpoint, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first: number | undefined;
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (ep.key) headers.Authorization = `Bearer ${ep.key}`;
    const req = freshRequest(ep, `${ep.baseUrl}/v1/chat/completions`, { method: 'POST', headers }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode} from ${ep.baseUrl}`));
        return;
      }
      const sse = createSseParser();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        for (const event of sse.push(chunk))
          if (first === undefined && /"(content|reasoning_content)":"[^"]/.test(event)) first = performance.now() - t0;
      });
      res.on('end', () => (first === undefined ? reject(new Error('no token in the stream')) : resolve(first)));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** GET a JSON document (null on any failure). */
export async function getJson(ep: Endpoint, path: string): Promise<{ status: number; body: unknown } | null> {
  try {
    const r = await endpointFetch(ep)(`${ep.baseUrl}${path}`, {
      headers: ep.key ? { Authorization: `Bearer ${ep.key}` } : {},
      signal: AbortSignal.timeout(15_000),
    });
    const text = await r.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: r.status, body };
  } catch {
    return null;
  }
}

export async function postJson(
  ep: Endpoint,
  path: string,
  payload: unknown,
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (ep.key) headers.Authorization = `Bearer ${ep.key}`;
  const r = await endpointFetch(ep)(`${ep.baseUrl}${path}`, { method: 'POST', headers, body: JSON.stringify(payload) });
  const text = await r.text();
  try {
    return { status: r.status, body: JSON.parse(text) };
  } catch {
    return { status: r.status, body: text };
  }
}

export type EngineKind = 'llama-server' | 'localai' | 'unknown';

/**
 * Which engine answers behind `ep`: llama-server serves `/props` (build_info, default generation
 * settings); LocalAI serves `/version` ({"version": …}) and has no /props.
 */
export async function detectEngine(ep: Endpoint): Promise<{ kind: EngineKind; detail: string }> {
  const props = await getJson(ep, '/props');
  if (
    props?.status === 200 &&
    typeof props.body === 'object' &&
    props.body &&
    ('build_info' in props.body || 'default_generation_settings' in props.body)
  ) {
    return {
      kind: 'llama-server',
      detail: `llama-server ${String((props.body as { build_info?: string }).build_info ?? '')}`.trim(),
    };
  }
  const version = await getJson(ep, '/version');
  if (version?.status === 200 && typeof version.body === 'object' && version.body && 'version' in version.body) {
    return { kind: 'localai', detail: `LocalAI ${String((version.body as { version: string }).version)}` };
  }
  return {
    kind: 'unknown',
    detail:
      'neither /props (llama-server) nor /version (LocalAI) answered ' +
      `(${props?.status ?? 'no answer'}, ${version?.status ?? 'no answer'})`,
  };
}

/** /v1/models: the first model id, and llama-server's meta (size in bytes, parameters) if given. */
export async function firstModel(ep: Endpoint): Promise<{ id: string; sizeBytes: number | null } | null> {
  const r = await getJson(ep, '/v1/models');
  const data = (r?.body as { data?: Array<{ id: string; meta?: { size?: number } }> } | undefined)?.data;
  if (!data?.length) return null;
  return { id: data[0]!.id, sizeBytes: typeof data[0]!.meta?.size === 'number' ? data[0]!.meta.size : null };
}
