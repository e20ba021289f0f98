// A Cline-like conversation: a long system prompt (tool descriptions, rules, environment) resent
// unchanged every turn, then growing turns (task, assistant reply, tool result, …).
import type { ChatMessage, Endpoint } from './client.js';
import { postJson } from './client.js';

const TOOLS = [
  'execute_command',
  'read_file',
  'write_to_file',
  'replace_in_file',
  'search_files',
  'list_files',
  'list_code_definition_names',
  'ask_followup_question',
  'attempt_completion',
  'new_task',
];
const RULES = [
  'Your current working directory is the project root; you cannot cd into a different directory to complete a task.',
  'Do not use the ~ character or $HOME to refer to the home directory.',
  'Before using execute_command, think about the system information context and tailor commands to it.',
  'When using search_files, craft regular expressions carefully to balance specificity and flexibility.',
  'When creating a new project, organise all new files within a dedicated project directory unless told otherwise.',
  'Consider the type of project (Python, TypeScript, web application) when deciding on the structure and files.',
  'When making changes to code, always consider the context in which the code is being used.',
  'Use the tools provided to accomplish the request efficiently and effectively, one tool per message.',
  'Wait for the user to confirm the result of each tool use before proceeding to the next step.',
  'Do not ask for more information than necessary; prefer reading files to asking questions.',
  'When you have completed the task, use attempt_completion to present the result to the user.',
  'Never end attempt_completion with a question or a request for further conversation.',
  'Be direct and technical in your responses; do not start messages with filler words.',
  'The user may provide a file’s contents directly in their message; do not read it again.',
  'When editing files prefer replace_in_file with small SEARCH/REPLACE blocks over rewriting the whole file.',
  'Keep indentation and line endings exactly as they are in the existing file.',
];

function paragraph(i: number): string {
  const tool = TOOLS[i % TOOLS.length]!;
  const rule = RULES[i % RULES.length]!;
  const other = RULES[(i * 7 + 3) % RULES.length]!;
  return (
    `## ${tool} (section ${i})\nDescription: Request to use ${tool} on the workspace. ${rule}\n` +
    'Parameters:\n- path: (required) The path relative to the current working directory, ' +
    `for example src/module${i}/index.ts.\n` +
    `- content: (optional) Text for the operation; keep it complete, never truncated. ${other}\n` +
    `Usage:\n<${tool}>\n<path>src/module${i}/index.ts</path>\n</${tool}>\n\n`
  );
}

/** Text of about `targetTokens` tokens, calibrated with the engine's `/tokenize` when it has one. */
export async function clineSystemPrompt(
  ep: Endpoint,
  targetTokens: number,
  nonce: string,
): Promise<{ text: string; tokens: number | null }> {
  const head =
    `[session ${nonce}] You are Cline, a highly skilled software engineer with extensive knowledge in many ` +
    'programming languages, frameworks, design patterns and best practices.\n\n====\n\nTOOL USE\n\n' +
    "You have access to a set of tools that are executed upon the user's approval.\n\n# Tools\n\n";
  const count = async (text: string): Promise<number | null> => {
    try {
      const r = await postJson(ep, '/tokenize', { content: text });
      const tokens = (r.body as { tokens?: unknown[] } | undefined)?.tokens;
      return r.status === 200 && Array.isArray(tokens) ? tokens.length : null;
    } catch {
      return null;
    }
  };
  let sample = '';
  for (let i = 0; i < 8; i++) sample += paragraph(i);
  // ~3.5 characters per token without a tokenizer
  const perParagraph = ((await count(sample)) ?? sample.length / 3.5) / 8;
  const n = Math.max(1, Math.round(targetTokens / perParagraph));
  let text = head;
  for (let i = 0; i < n; i++) text += paragraph(i);
  text +=
    '\n====\n\nSYSTEM INFORMATION\n\nOperating System: Linux 6.1\nDefault Shell: /bin/bash\n' +
    'Current Working Directory: /home/dev/project\n';
  return { text, tokens: await count(text) };
}

export function firstTurn(system: string): ChatMessage[] {
  return [
    { role: 'system', content: system },
    {
      role: 'user',
      content:
        '<task>\nThe function parseConfig in src/config.ts throws on empty files. ' +
        'Make it return the defaults instead, and add a unit test.\n</task>\n' +
        '<environment_details>\n# Current Working Directory (/home/dev/project) Files\n' +
        'package.json\nsrc/config.ts\nsrc/config.test.ts\nsrc/index.ts\ntsconfig.json\n</environment_details>',
    },
  ];
}

/** Turn 2: the assistant's answer to turn 1, then a tool result (a small file) as the next user message. */
export function secondTurn(turn1: ChatMessage[], assistantText: string): ChatMessage[] {
  const file = Array.from(
    { length: 8 },
    (_, i) => `${i + 1} | export const option${i} = process.env.OPTION_${i} ?? 'default-${i}';`,
  ).join('\n');
  return [
    ...turn1,
    { role: 'assistant', content: assistantText },
    {
      role: 'user',
      content:
        `[read_file for 'src/config.ts'] Result:\n${file}\n` +
        '<environment_details>\n# Current Mode\nACT MODE\n</environment_details>',
    },
  ];
}

/** First user messages of new tasks: each task of figure 4c asks for something else. */
const TASKS = [
  'The function parseConfig in src/config.ts throws on empty files. Make it return the defaults instead.',
  'Add a --verbose flag to the command line in src/index.ts that prints every option it read.',
  'Rename the exported function loadSettings to readSettings everywhere and update the tests.',
  'src/config.test.ts fails on Windows because of path separators; make the test portable.',
  'Write a README section that explains every OPTION_ environment variable the project reads.',
  'Replace the callbacks in src/index.ts with async/await and keep the behaviour the same.',
];

/** A new task: the (unchanged) system prompt and task `i`'s first user message. */
export function newTask(system: string, i: number): ChatMessage[] {
  return [
    { role: 'system', content: system },
    {
      role: 'user',
      content:
        `<task>\n${TASKS[i % TASKS.length]} (task ${i + 1})\n</task>\n` +
        '<environment_details>\n# Current Working Directory (/home/dev/project) Files\n' +
        'package.json\nsrc/config.ts\nsrc/config.test.ts\nsrc/index.ts\ntsconfig.json\n</environment_details>',
    },
  ];
}
