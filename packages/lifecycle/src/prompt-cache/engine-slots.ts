// llama-server's slot API on loopback (tools/server/server-context.cpp): GET /health, GET /slots,
// POST /slots/<id>?action=save|restore. node:http rather than fetch: a save of a large slot may take
// longer than fetch's fixed 300 s header timeout.
import { request } from 'node:http';

export interface EngineAnswer {
  /** 0: no answer (refused, reset, timed out). */
  status: number;
  body: unknown;
  /** Why there was no answer, when status is 0. */
  error?: string;
}

/** One request to the engine; never throws. */
export function engineRequest(
  base: string,
  method: 'GET' | 'POST',
  route: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<EngineAnswer> {
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      new URL(route, base),
      {
        method,
        timeout: timeoutMs,
        headers: payload === undefined ? {} : { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* not JSON: keep the text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', (e) => resolve({ status: 0, body: null, error: e.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ status: 0, body: null, error: e.message }));
    req.end(payload);
  });
}

/** What GET /slots says about one slot (fields present in llama.cpp of node-llama-cpp 3.21.1). */
export interface SlotInfo {
  id: number;
  is_processing: boolean;
  /** Present only once the slot has run a task in this engine's lifetime. */
  n_prompt_tokens?: number;
}

/** The engine's answer to a save or restore (server_task_result_slot_save_load::to_json). */
export interface SlotFileResult {
  n_saved?: number;
  n_written?: number;
  n_restored?: number;
  n_read?: number;
  timings?: { save_ms?: number; restore_ms?: number };
}

/** An engine error's message ({"error":{"message":…}}), or the body as text. */
export function errorMessage(answer: EngineAnswer): string {
  if (answer.status === 0) return answer.error ?? 'no answer';
  const e = (answer.body as { error?: { message?: unknown } } | null)?.error;
  return typeof e?.message === 'string' ? e.message : JSON.stringify(answer.body).slice(0, 300);
}
