// What the appliance itself saw of a run: the gateway's access log (one JSON line per request, the key's
// name, never the key) and the engine's own record of its last completion (GET /slots with
// LLAMA_SERVER_SLOTS_DEBUG=1: the prompt it rendered and the text it generated) and counters (/metrics).

export interface AccessEntry {
  key: string;
  method: string;
  path: string;
  status: number;
  upstream_status: string;
  bytes: number;
  request_time: number;
  user_agent: string;
  /** Request line, headers and body in bytes: only when the log format has `$request_length`. */
  request_length?: number;
}

/** The access log's entries (the rendered `slm_copilot` log format is JSON per line). */
export function parseAccessLog(text: string): AccessEntry[] {
  return text
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as AccessEntry);
}

export interface EngineCompletion {
  /** The prompt as the engine rendered it with the chat template (text). */
  prompt: string;
  /** The text the engine generated for it. (Its token count is not kept: the slot's stats reset at the end.) */
  generated: string;
  idTask: number;
}

interface SlotJson {
  id_task?: number;
  prompt?: string;
  generated?: string;
}

/** The engine's most recent completion (the slot with the highest task id). */
export async function lastCompletion(engineUrl: string): Promise<EngineCompletion> {
  const r = await fetch(`${engineUrl}/slots`, { signal: AbortSignal.timeout(10_000) });
  if (r.status !== 200) throw new Error(`GET ${engineUrl}/slots answered ${r.status}: ${await r.text()}`);
  const slots = (await r.json()) as SlotJson[];
  const last = slots
    .filter((s) => typeof s.id_task === 'number')
    .sort((a, b) => (b.id_task ?? 0) - (a.id_task ?? 0))[0];
  if (!last || last.generated === undefined || last.prompt === undefined) {
    throw new Error('the engine has no completed task in /slots (is LLAMA_SERVER_SLOTS_DEBUG=1 set?)');
  }
  return {
    prompt: last.prompt,
    generated: last.generated,
    idTask: last.id_task ?? -1,
  };
}

/** How many tokens the engine's tokenizer makes of `text` (special tokens parsed, as in a prompt). */
export async function countTokens(engineUrl: string, text: string): Promise<number> {
  const r = await fetch(`${engineUrl}/tokenize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ content: text, parse_special: true }),
    signal: AbortSignal.timeout(30_000),
  });
  return ((await r.json()) as { tokens: unknown[] }).tokens.length;
}

/** The engine's counters that grow with each request (prompt and generated tokens, their seconds). */
export async function engineCounters(engineUrl: string): Promise<Record<string, number>> {
  const r = await fetch(`${engineUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const out: Record<string, number> = {};
  for (const m of (await r.text()).matchAll(/^llamacpp:(\w+) ([\d.e+-]+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

/** Text as a terminal would show it, compared loosely: no escape sequences, whitespace runs as one space. */
export function normalise(text: string): string {
  return text
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}
