// An agent executing the tool call it received (issue #13, item 4): Continue CLI (`cn -p`), offered one
// tool only, against the tool-caller test model. What the run leaves to check it with: the engine's last
// prompt (the follow-up request, rendered by our template: the call as the agent sent it back and the
// tool's result) and the agent's own record of the session (~/.continue/sessions/<id>.json: each call it
// received, its id, status and output).
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { continueSnippet } from '@slm-copilot/report-writer';
import { clientTargetOf, runSnippet } from './agents.js';
import type { Runner } from './session.js';

/**
 * Continue CLI 1.5.47's tools (BUILT_IN_TOOL_NAMES in its src/tools/builtInToolNames.ts, plus
 * CheckBackgroundJob of src/tools/index.tsx). Its `--exclude <tool>` drops a tool from the request.
 */
export const CONTINUE_TOOLS = [
  'AskQuestion',
  'Bash',
  'CheckBackgroundJob',
  'Checklist',
  'Diff',
  'Edit',
  'Exit',
  'Fetch',
  'List',
  'MultiEdit',
  'Read',
  'ReportFailure',
  'Search',
  'Skills',
  'Status',
  'Subagent',
  'UploadArtifact',
  'Write',
] as const;

/**
 * The one tool offered: Continue's Checklist, which touches nothing outside the conversation yet always
 * succeeds, whatever its (random) argument, with an output its own code makes from that argument. A tool
 * with a path argument (Read, List) would fail on the random path; Bash would run a random command line.
 */
export const ONLY_TOOL = 'Checklist';

/** What Continue's Checklist returns for its arguments (`run` in its src/tools/writeChecklist.ts). */
export function checklistOutput(args: unknown): string {
  const checklist = (args as { checklist?: unknown } | null)?.checklist;
  if (typeof checklist !== 'string')
    throw new Error(`Checklist arguments without a checklist: ${JSON.stringify(args)}`);
  return `Task list status:\n${checklist}`;
}

/** `--exclude` for every Continue tool but `keep`. */
export function excludeAllBut(keep: string): string[] {
  return CONTINUE_TOOLS.filter((t) => t !== keep).flatMap((t) => ['--exclude', t]);
}

/** One tool call as the agent recorded it. */
export interface RecordedCall {
  id: string;
  name: string;
  arguments: unknown;
  /** Continue's state of the call (`done` once executed). */
  status: string;
  /** The tool's output, as the agent sent it back. */
  output: string;
}

/** One assistant reply as the agent recorded it. */
export interface RecordedReply {
  text: string;
  calls: number;
  /** Tokens the engine said it generated for this reply (the response's usage). */
  completionTokens: number;
}

export interface ContinueRecord {
  calls: RecordedCall[];
  replies: RecordedReply[];
}

interface SessionJson {
  history?: {
    message?: {
      role?: string;
      content?: unknown;
      toolCalls?: { id: string; function: { name: string; arguments: string } }[];
      usage?: { completion_tokens?: number };
    };
    toolCallStates?: { toolCallId: string; status: string; output?: { content?: string }[] }[];
  }[];
}

/** Continue's session file in `home` (the one `<id>.json` beside the index sessions.json), parsed. */
export async function readContinueSession(home: string): Promise<ContinueRecord> {
  const dir = path.join(home, '.continue', 'sessions');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json') && f !== 'sessions.json');
  if (files.length !== 1) throw new Error(`expected one session file in ${dir}, found: ${files.join(', ') || 'none'}`);
  const json = JSON.parse(await readFile(path.join(dir, files[0]!), 'utf8')) as SessionJson;
  const calls: RecordedCall[] = [];
  const replies: RecordedReply[] = [];
  for (const item of json.history ?? []) {
    const m = item.message;
    if (m?.role !== 'assistant') continue;
    const toolCalls = m.toolCalls ?? [];
    replies.push({
      text: typeof m.content === 'string' ? m.content : '',
      calls: toolCalls.length,
      completionTokens: m.usage?.completion_tokens ?? 0,
    });
    for (const tc of toolCalls) {
      const state = item.toolCallStates?.find((s) => s.toolCallId === tc.id);
      calls.push({
        id: tc.id,
        name: tc.function.name,
        arguments: JSON.parse(tc.function.arguments || '{}'),
        status: state?.status ?? '(no state)',
        output: (state?.output ?? []).map((o) => o.content ?? '').join(''),
      });
    }
  }
  return { calls, replies };
}

/**
 * The runner: the report's Continue lines (as runContinue), with every tool but `tool` excluded; after the
 * run (before the HOME goes), the agent's session record is read into `sink.record`.
 */
export function onlyToolRunner(tool: string, sink: { record?: ContinueRecord; recordError?: string }): Runner {
  return async (agent, h, t, prompt, timeoutMs) => {
    const extraArgs = excludeAllBut(tool);
    const run = await runSnippet(agent, h, t, continueSnippet(clientTargetOf(t)), { prompt, timeoutMs, extraArgs });
    try {
      sink.record = await readContinueSession(h.home);
    } catch (e) {
      sink.recordError = e instanceof Error ? e.message : String(e);
    }
    return run;
  };
}

/** The tool names the engine's prompt offered (our template's `[AVAILABLE_TOOLS]…[/AVAILABLE_TOOLS]`). */
export function offeredTools(prompt: string): string[] {
  const m = /\[AVAILABLE_TOOLS\](.*?)\[\/AVAILABLE_TOOLS\]/s.exec(prompt);
  if (!m) return [];
  return (JSON.parse(m[1]!) as { function: { name: string } }[]).map((t) => t.function.name);
}

/** The tool calls and tool results in a prompt as our template renders them. */
export interface PromptTurns {
  /** `[TOOL_CALLS]name[ARGS]arguments` of assistant turns, arguments parsed. */
  calls: { name: string; arguments: unknown }[];
  /** `[TOOL_RESULTS]content[/TOOL_RESULTS]` contents. */
  results: string[];
}

/** The end of the JSON object that starts at `from` (after blanks): braces counted outside strings. */
function objectEnd(text: string, from: number): number {
  let depth = 0;
  let inString = false;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i + 1;
    else if (depth === 0 && c !== ' ') break;
  }
  throw new Error(`no JSON object at ${from}: ${JSON.stringify(text.slice(from, from + 80))}`);
}

/**
 * Reads the tool turns out of the engine's prompt. The arguments are read as JSON (their random text may
 * hold anything); the engine's /slots shows the prompt detokenized, with a space after some control tokens
 * (`[TOOL_RESULTS] Task…`): one leading space is dropped.
 */
export function promptTurns(prompt: string): PromptTurns {
  const unspace = (s: string) => s.replace(/^ /, '');
  const calls: PromptTurns['calls'] = [];
  let outside = ''; // the prompt without the arguments (where the results are looked for)
  const re = /\[TOOL_CALLS\]([^[]*?)\[ARGS\]/g;
  let at = 0;
  for (let m = re.exec(prompt); m; m = re.exec(prompt)) {
    const from = m.index + m[0].length;
    const end = objectEnd(prompt, from);
    calls.push({ name: unspace(m[1]!), arguments: JSON.parse(prompt.slice(from, end)) });
    outside += prompt.slice(at, from);
    at = re.lastIndex = end;
  }
  outside += prompt.slice(at);
  const results = [...outside.matchAll(/\[TOOL_RESULTS\](.*?)\[\/TOOL_RESULTS\]/gs)].map((m) => unspace(m[1]!));
  return { calls, results };
}
