// Saving and restoring the engine's slots (the prompt-cache unit's ExecStop and ExecStart): the engine
// writes and reads the files itself; this decides which slots, keeps the disk bounded, and makes a
// file appear only once it is complete and on disk.
import { chmod, open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { partialFileName, slotFileName } from '@slm-copilot/localai-install';
import { exists, formatDuration, fsyncDir, type Logger } from '@slm-copilot/task-kit';
import { engineRequest, errorMessage, type EngineAnswer, type SlotFileResult, type SlotInfo } from './engine-slots.js';

/** Disk left free after a save, for the system and the logs. */
export const FREE_SPACE_RESERVE_BYTES = 1024 ** 3;

export interface SlotOutcome {
  slot: number;
  action: 'saved' | 'restored' | 'skipped' | 'failed';
  tokens?: number;
  bytes?: number;
  ms?: number;
  reason?: string;
}

/**
 * Slots worth saving: those that ran a task in this engine's lifetime and hold tokens. Any other slot
 * holds nothing, or exactly what was restored into it from the file that is still on disk. Pure.
 */
export function slotsToSave(slots: readonly SlotInfo[]): number[] {
  return slots.filter((s) => (s.n_prompt_tokens ?? 0) > 0).map((s) => s.id);
}

/** Whether a save of at most `maxFileBytes` leaves the reserve free, once the file it replaces is gone. Pure. */
export function saveFits(freeBytes: number, replacedBytes: number, maxFileBytes: number): boolean {
  return freeBytes + replacedBytes >= maxFileBytes + FREE_SPACE_RESERVE_BYTES;
}

const sizeOf = (file: string) =>
  stat(file).then(
    (s) => s.size,
    () => 0,
  );

async function freeBytes(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

async function readSlots(engine: string): Promise<{ slots: SlotInfo[] } | { why: string }> {
  const answer = await engineRequest(engine, 'GET', '/slots');
  if (answer.status !== 200 || !Array.isArray(answer.body)) {
    return { why: `GET /slots answered ${answer.status || 'nothing'}: ${errorMessage(answer)}` };
  }
  return { slots: answer.body as SlotInfo[] };
}

/** Makes the engine's finished file durable, private and visible under its final name. */
async function commit(dir: string, slot: number): Promise<void> {
  const partial = path.join(dir, partialFileName(slot));
  await chmod(partial, 0o600);
  const handle = await open(partial, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(partial, path.join(dir, slotFileName(slot)));
  await fsyncDir(dir);
}

async function saveOne(
  opts: { engine: string; dir: string; maxFileBytes: number; timeoutMs: number },
  slot: number,
): Promise<SlotOutcome> {
  const file = path.join(opts.dir, slotFileName(slot));
  const partial = path.join(opts.dir, partialFileName(slot));
  const free = await freeBytes(opts.dir);
  if (!saveFits(free, await sizeOf(file), opts.maxFileBytes)) {
    const reason = `${free} bytes free, a save may take ${opts.maxFileBytes} and ${FREE_SPACE_RESERVE_BYTES} stay free`;
    return { slot, action: 'skipped', reason };
  }
  // the previous file goes first: the disk never holds more than one file per slot
  await rm(partial, { force: true });
  await rm(file, { force: true });
  const t0 = performance.now();
  const answer = await engineRequest(
    opts.engine,
    'POST',
    `/slots/${slot}?action=save`,
    {
      filename: partialFileName(slot),
    },
    opts.timeoutMs,
  );
  if (answer.status !== 200) {
    await rm(partial, { force: true });
    return { slot, action: 'failed', reason: errorMessage(answer) };
  }
  await commit(opts.dir, slot);
  const r = answer.body as SlotFileResult;
  return { slot, action: 'saved', tokens: r.n_saved, bytes: r.n_written, ms: performance.now() - t0 };
}

function describe(o: SlotOutcome): string {
  const what = o.tokens !== undefined ? ` ${o.tokens} tokens (${o.bytes} bytes) in ${formatDuration(o.ms ?? 0)}` : '';
  return `slot ${o.slot}: ${o.action}${what}${o.reason ? `: ${o.reason}` : ''}`;
}

function report(outcomes: SlotOutcome[], log: Logger): SlotOutcome[] {
  for (const o of outcomes) {
    if (o.action === 'failed' || o.action === 'skipped') log.warn(describe(o));
    else log.info(describe(o));
  }
  return outcomes;
}

/**
 * Before the engine stops: every slot that served a request is written to its file. Engine errors are
 * logged, never thrown (the unit's stop must go on).
 */
export async function saveSlots(opts: {
  engine: string;
  dir: string;
  maxFileBytes: number;
  log: Logger;
  timeoutMs?: number;
}): Promise<SlotOutcome[]> {
  if (!(await exists(opts.dir))) {
    // configure deleted it (model, template, settings or keys changed): the running engine's cache goes too
    opts.log.info(`nothing saved: ${opts.dir} does not exist (a new configuration)`);
    return [];
  }
  const read = await readSlots(opts.engine);
  if ('why' in read) {
    opts.log.warn(`nothing saved: ${read.why}`);
    return [];
  }
  const wanted = slotsToSave(read.slots);
  if (wanted.length === 0) opts.log.info('nothing to save: no slot served a request since the engine started');
  const outcomes: SlotOutcome[] = [];
  for (const slot of wanted) {
    outcomes.push(await saveOne({ ...opts, timeoutMs: opts.timeoutMs ?? 3_600_000 }, slot));
  }
  return report(outcomes, opts.log);
}

async function waitReady(engine: string, timeoutMs: number): Promise<EngineAnswer> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const answer = await engineRequest(engine, 'GET', '/health', undefined, 5_000);
    if (answer.status === 200 || performance.now() >= deadline) return answer;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The saved slot files in `dir` (missing dir: none), partial ones removed. */
async function savedSlots(dir: string): Promise<number[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names.filter((n) => n.endsWith('.partial'))) await rm(path.join(dir, n), { force: true });
  return names
    .map((n) => /^slot(\d+)\.bin$/.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

async function restoreOne(engine: string, dir: string, slot: number, timeoutMs: number): Promise<SlotOutcome> {
  const t0 = performance.now();
  const answer = await engineRequest(
    engine,
    'POST',
    `/slots/${slot}?action=restore`,
    {
      filename: slotFileName(slot),
    },
    timeoutMs,
  );
  if (answer.status !== 200) {
    // refused (damaged, or does not fit the slot): it would be refused at every start
    await rm(path.join(dir, slotFileName(slot)), { force: true });
    return { slot, action: 'failed', reason: `${errorMessage(answer)} (file deleted)` };
  }
  const r = answer.body as SlotFileResult;
  return { slot, action: 'restored', tokens: r.n_restored, bytes: r.n_read, ms: performance.now() - t0 };
}

/** Once the engine answers: each saved slot file is read back into its slot. Engine errors are logged, not thrown. */
export async function restoreSlots(opts: {
  engine: string;
  dir: string;
  readyTimeoutMs: number;
  log: Logger;
  timeoutMs?: number;
}): Promise<SlotOutcome[]> {
  const saved = await savedSlots(opts.dir);
  if (saved.length === 0) {
    opts.log.info(`nothing to restore: no saved slot in ${opts.dir}`);
    return [];
  }
  const ready = await waitReady(opts.engine, opts.readyTimeoutMs);
  if (ready.status !== 200) {
    opts.log.warn(`nothing restored: the engine's /health answered ${ready.status || 'nothing'}`);
    return [];
  }
  const read = await readSlots(opts.engine);
  if ('why' in read) {
    opts.log.warn(`nothing restored: ${read.why}`);
    return [];
  }
  const ids = new Set(read.slots.map((s) => s.id));
  const outcomes: SlotOutcome[] = [];
  for (const slot of saved) {
    if (!ids.has(slot)) {
      await rm(path.join(opts.dir, slotFileName(slot)), { force: true });
      outcomes.push({ slot, action: 'skipped', reason: 'the engine has no such slot (file deleted)' });
      continue;
    }
    outcomes.push(await restoreOne(opts.engine, opts.dir, slot, opts.timeoutMs ?? 3_600_000));
  }
  return report(outcomes, opts.log);
}
