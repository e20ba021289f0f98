// Phase "task-cache": figure 4c. Two users alternate new Cline-like tasks on one engine slot. Each
// user's tasks resend that user's long system prompt unchanged, with a different first user message;
// the two users' system prompts differ from their first tokens (another agent, or another version of
// it), so every task evicts the other user's prefix from the slot, and a user's next task can only
// find its prefix in the engine's host-memory prompt cache (llama-server `--cache-ram`: the slot's
// state is saved there when another prompt takes the slot, and the most similar entry is loaded back
// — tools/server/server-context.cpp get_available_slot, server-task.cpp server_prompt_cache::load).
// Figure: TTFT of such a new task ÷ the cold TTFT (the first task after the engine started).
import { getJson, streamChat, type StreamResult } from './client.js';
import type { Bed, BenchRun } from './context.js';
import { clineSystemPrompt, newTask } from './conversation.js';
import { fmt, median, nonce, round } from './stats.js';
import { startEngine, withFlag } from './testbed.js';

/** Issue #14: a new task after another user's should cost at most this much of a cold one. */
export const NEW_TASK_GOAL = 0.15;

export interface TaskSample {
  user: 'A' | 'B';
  /** The user's task number, from 1. */
  task: number;
  ttftMs: number;
  promptTokens: number;
  /** Prompt tokens the engine really processed (`timings.prompt_n`): few = the cached prefix was used. */
  promptN: number | null;
  /** Prompt tokens taken from the cache (`timings.cache_n`). */
  cacheN: number | null;
  /** `usage.prompt_tokens_details.cached_tokens`. */
  cachedTokens: number | null;
}

/** Who sends what, in order: A1, B1, A2, B2, … (`perUser` tasks each). */
export function taskOrder(perUser: number): Array<{ user: 'A' | 'B'; task: number }> {
  return Array.from({ length: perUser }, (_, i) => [
    { user: 'A' as const, task: i + 1 },
    { user: 'B' as const, task: i + 1 },
  ]).flat();
}

/** What figure 4d continues from: the users' prompts, the samples, the engine's command line. */
export interface TaskCacheOutcome {
  system: Record<'A' | 'B', { text: string; tokens: number | null }>;
  samples: TaskSample[];
  /** The next task number (each task has its own first message). */
  nextTask: number;
  /** The command line the engine runs with now (test bed only). */
  engineArgs: string[] | null;
}

/** The test bed restarts its engine as rendered (empty caches, one slot); an endpoint is used as it is. */
async function freshEngine(bed: Bed): Promise<{ how: string; args: string[] | null }> {
  const { engine, res } = bed;
  if (!(bed.testbed && engine && res.server && bed.llamaServerBin))
    return { how: 'a deployed endpoint, not restarted: cold = the first task with a new system prompt', args: null };
  await res.server.stop();
  const one = engine.plan.parallelSlots === 1;
  const args = one ? engine.args : withFlag(engine.args, '--parallel', '1', ['-np']);
  res.server = await startEngine(bed.llamaServerBin, args, engine.paths.engine.port);
  const how = `engine restarted as rendered${one ? '' : ' except --parallel 1'}: cold = the first task after its start`;
  return { how, args };
}

/** `--cache-ram` of the engine's command line (MiB), when the bench knows it. */
function cacheRamMiB(bed: Bed): number | null {
  const args = bed.engine?.args ?? [];
  const i = args.indexOf('--cache-ram');
  return i >= 0 ? Number(args[i + 1]) : null;
}

export const sample = (user: 'A' | 'B', task: number, r: StreamResult): TaskSample => ({
  user,
  task,
  ttftMs: round(r.ttftMs, 1),
  promptTokens: r.promptTokens,
  promptN: r.timings?.prompt_n ?? null,
  cacheN: r.timings?.cache_n ?? null,
  cachedTokens: r.cachedTokens,
});

export const processed = (x: TaskSample) => `${x.promptN ?? '?'}/${x.promptTokens}`;

/** Figure 4c: see the head of this file. */
export async function taskCacheFigure(run: BenchRun, bed: Bed): Promise<TaskCacheOutcome> {
  const { P, log } = run;
  run.mark('task-cache');
  const { how, args: engineArgs } = await freshEngine(bed);
  const target = bed.direct ?? bed.ep;
  const slots = (await getJson(target, '/props'))?.body as { total_slots?: number } | undefined;
  const system = {
    A: await clineSystemPrompt(target, P.systemTokens, nonce()),
    B: await clineSystemPrompt(target, P.systemTokens, nonce()),
  };
  const samples: TaskSample[] = [];
  let k = 0;
  for (const { user, task } of taskOrder(P.tasksPerUser)) {
    const r = await streamChat(bed.client, bed.ep.model, newTask(system[user].text, k++), { maxTokens: 4 });
    const x = sample(user, task, r);
    samples.push(x);
    log(
      `  user ${user} task ${task}: TTFT ${fmt(x.ttftMs, 0)} ms, prompt ${x.promptTokens} tokens, ` +
        `processed ${x.promptN ?? '?'} (timings.prompt_n), from cache ${x.cacheN ?? '?'}`,
    );
  }
  const [cold, otherCold] = [samples[0]!, samples[1]!];
  // Every task after each user's first: the other user's task ran in between.
  const warm = samples.slice(2);
  const ratio = median(warm.map((x) => x.ttftMs)) / cold.ttftMs;
  const hits = warm.filter((x) => x.promptN !== null && cold.promptN !== null && x.promptN < cold.promptN / 2);
  const ram = cacheRamMiB(bed);
  const hitWords =
    cold.promptN === null
      ? 'the engine reports no timings.prompt_n'
      : `${hits.length} of ${warm.length} new tasks processed less than half the cold prompt`;
  run.figures.push({
    n: '4c',
    id: 'cache-new-task',
    title: "new task after another user's on one slot: TTFT ÷ cold TTFT",
    value: round(ratio),
    unit: '×',
    detail:
      `median ${fmt(median(warm.map((x) => x.ttftMs)), 0)} ms of ${warm.length} new tasks ` +
      `(processed/prompt tokens: ${warm.map(processed).join(', ')}) ÷ ${fmt(cold.ttftMs, 0)} ms cold ` +
      `(${processed(cold)}; the other user's first task: ${fmt(otherCold.ttftMs, 0)} ms, ${processed(otherCold)}); ` +
      `system prompts ${system.A.tokens ?? '?'} and ${system.B.tokens ?? '?'} tokens, differing from the start; ` +
      `${slots?.total_slots ?? '?'} slot(s), --cache-ram ${ram ?? '?'} MiB; ${how}; ${hitWords}`,
    verdict:
      ratio <= NEW_TASK_GOAL
        ? `meets the goal (≤ ${NEW_TASK_GOAL})`
        : `ABOVE GOAL (≤ ${NEW_TASK_GOAL})${run.opts.quick ? ': --quick uses a short prompt' : ''}`,
    data: {
      samples,
      coldMs: cold.ttftMs,
      newTaskMedianMs: median(warm.map((x) => x.ttftMs)),
      systemTokens: { A: system.A.tokens, B: system.B.tokens },
      slots: slots?.total_slots ?? null,
      cacheRamMiB: ram,
      how,
      goal: NEW_TASK_GOAL,
      phase: 'task-cache',
    },
  });
  return { system, samples, nextTask: k, engineArgs };
}
