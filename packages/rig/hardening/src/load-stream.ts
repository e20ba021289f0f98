// One streamed chat completion of the load run, classified by how it ended: completed ([DONE] after
// a finish_reason), a clean OpenAI-shaped 429/503, truncated, or anything else.
import type { IncomingMessage } from 'node:http';
import { request, type Agent } from 'node:https';
import { sseEvents } from '@slm-copilot/nginx-config/test-support/client';

export type Outcome =
  | { kind: 'completed' }
  | { kind: '429' }
  | { kind: '503' }
  | { kind: 'truncated'; why: string }
  | { kind: 'other'; status: number | string; body: string };

export interface StreamOutcome {
  outcome: Outcome;
  /** Retry-After in seconds (1 when absent). */
  retryAfter: number;
}

function isOpenAiError(body: string): boolean {
  try {
    return typeof (JSON.parse(body) as { error?: { message?: unknown } }).error?.message === 'string';
  } catch {
    return false;
  }
}

/** How a response ended: its status, the body read so far and a transport error, if any. */
export function classify(res: IncomingMessage, text: string, transportError: string | null): StreamOutcome {
  const status = res.statusCode ?? 0;
  const retryAfter = Number(res.headers['retry-after'] ?? 1) || 1;
  if (status === 200) {
    const events = sseEvents(text).filter((e) => e.startsWith('data: '));
    const done = events.at(-1) === 'data: [DONE]';
    const finished = events.some((e) => /"finish_reason":"(length|stop)"/.test(e));
    if (transportError || !res.complete)
      return { outcome: { kind: 'truncated', why: transportError ?? 'incomplete chunked body' }, retryAfter };
    if (!done || !finished) {
      const why = `ended without ${done ? 'a finish_reason' : '[DONE]'} after ${events.length} events`;
      return { outcome: { kind: 'truncated', why }, retryAfter };
    }
    return { outcome: { kind: 'completed' }, retryAfter };
  }
  if ((status === 429 || status === 503) && isOpenAiError(text))
    return { outcome: { kind: status === 429 ? '429' : '503' }, retryAfter };
  return { outcome: { kind: 'other', status, body: text.slice(0, 300) }, retryAfter };
}

/** One streamed chat completion; classifies how it ended. */
export function streamOnce(
  url: string,
  key: string,
  agent: Agent,
  maxTokens: number,
  host: string,
): Promise<StreamOutcome> {
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
        res.on('end', () => resolve(classify(res, text, null)));
        res.on('aborted', () => resolve(classify(res, text, 'aborted')));
        res.on('error', (e) => resolve(classify(res, text, e.message)));
      },
    );
    req.on('timeout', () => req.destroy(new Error('client timeout (120 s)')));
    req.on('error', (e) =>
      resolve({ outcome: { kind: 'other', status: `error: ${e.message}`, body: '' }, retryAfter: 1 }),
    );
    req.end(body);
  });
}
