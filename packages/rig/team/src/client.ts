// A chat client for the test: node:https against the lb's per-VM CA (verified, never rejectUnauthorized:
// false), streaming or not, that records how a stream ended: [DONE], an error event, or a cut connection.
import { request } from 'node:https';

export interface ChatResult {
  status: number;
  /** Whole body (non-streaming) or the raw SSE text received. */
  body: string;
  /** data: [DONE] was received. */
  done: boolean;
  /** How the response ended when it did not end normally ('aborted', an error message), else null. */
  cut: string | null;
  /** SSE `error` payloads received (data lines holding {"error": …}). */
  errorEvents: string[];
  /** When the first body byte and the end arrived (performance.now()). */
  firstByteAt: number | null;
  endedAt: number;
  /** usage.prompt_tokens_details.cached_tokens and usage.prompt_tokens (non-streaming). */
  cachedTokens: number | null;
  promptTokens: number | null;
}

export interface ChatTarget {
  origin: string;
  ca: string;
}

export interface ChatOptions {
  stream?: boolean;
  maxTokens?: number;
  /** llama-server: keep generating past the end-of-sequence token (a long stream from the tiny model). */
  ignoreEos?: boolean;
  /** Called once, at the first body byte. */
  onFirstByte?: () => void;
  timeoutMs?: number;
}

export function chat(
  target: ChatTarget,
  key: string,
  messages: { role: string; content: string }[],
  o: ChatOptions = {},
): Promise<ChatResult> {
  const body = JSON.stringify({
    model: 'devstral-small-2',
    messages,
    stream: o.stream ?? false,
    max_tokens: o.maxTokens ?? 4,
    temperature: 0,
    ...(o.ignoreEos ? { ignore_eos: true } : {}),
  });
  const url = new URL('/v1/chat/completions', target.origin);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca: target.ca,
        agent: false,
        headers: {
          Authorization: `Bearer ${key}`,
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
        },
        timeout: o.timeoutMs ?? 120_000,
      },
      (res) => {
        let text = '';
        let firstByteAt: number | null = null;
        let cut: string | null = null;
        let settled = false;
        const finish = () => {
          if (settled) return;
          settled = true;
          const events = text
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6));
          const usage = (() => {
            try {
              const u = (JSON.parse(text) as { usage?: Record<string, unknown> }).usage;
              const details = u?.prompt_tokens_details as { cached_tokens?: number } | undefined;
              return { cached: details?.cached_tokens ?? null, prompt: (u?.prompt_tokens as number) ?? null };
            } catch {
              return { cached: null, prompt: null };
            }
          })();
          resolve({
            status: res.statusCode ?? 0,
            body: text,
            done: events.includes('[DONE]'),
            cut,
            errorEvents: events.filter((e) => e.startsWith('{"error"')),
            firstByteAt,
            endedAt: performance.now(),
            cachedTokens: usage.cached,
            promptTokens: usage.prompt,
          });
        };
        res.on('data', (d: Buffer) => {
          if (firstByteAt === null) {
            firstByteAt = performance.now();
            o.onFirstByte?.();
          }
          text += d.toString();
        });
        res.on('aborted', () => (cut ??= 'aborted'));
        res.on('error', (e) => ((cut ??= e.message), finish()));
        res.on('end', finish);
        res.on('close', () => {
          if (!res.complete) cut ??= 'closed before the end of the response';
          finish();
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(body);
  });
}
