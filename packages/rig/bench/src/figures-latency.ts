// Phases "ttft" and "prompt-cache": figure 3 (TTFT through the gateway minus direct to the engine)
// and figures 4a/4b (turn-2 ÷ turn-1 TTFT of a Cline-like conversation, prompt cache on and off).
import { rawTtft, streamChat, type Endpoint, type StreamResult } from './client.js';
import type { Bed, BenchRun } from './context.js';
import { clineSystemPrompt, firstTurn, secondTurn } from './conversation.js';
import { fmt, median, nonce, round } from './stats.js';
import { startEngine, withoutFlag } from './testbed.js';

/** Paired TTFT samples, alternating which path goes first. */
async function ttftPairs(direct: Endpoint, ep: Endpoint, body: string, rounds: number) {
  const d: number[] = [];
  const g: number[] = [];
  for (let i = 0; i < 2; i++) {
    await rawTtft(direct, body);
    await rawTtft(ep, body);
  }
  for (let i = 0; i < rounds; i++) {
    // alternate the order so neither path always runs second
    if (i % 2) {
      d.push(await rawTtft(direct, body));
      g.push(await rawTtft(ep, body));
    } else {
      g.push(await rawTtft(ep, body));
      d.push(await rawTtft(direct, body));
    }
  }
  return { d, g };
}

/** Figure 3, when the engine's own port is reachable. */
export async function ttftFigure(run: BenchRun, bed: Bed): Promise<void> {
  const { P } = run;
  const { direct, ep } = bed;
  const title = 'TTFT through the gateway minus direct';
  if (!direct) {
    run.skip(
      '3',
      'ttft-overhead',
      title,
      'ms',
      'the engine’s own port is not reachable from here (give --engine-url when running on the VM)',
    );
    return;
  }
  run.mark('ttft');
  const body = JSON.stringify({
    model: ep.model,
    messages: [{ role: 'user', content: 'Write one word.' }],
    max_tokens: 2,
    stream: true,
  });
  try {
    const { d, g } = await ttftPairs(direct, ep, body, P.ttftRounds);
    const diff = median(g) - median(d);
    // Headline: the median of the N paired differences (each pair is measured back to back, so
    // the machine's drift cancels); the difference of the two medians is shown beside it.
    const paired = median(g.map((x, i) => x - d[i]!));
    run.figures.push({
      n: '3',
      id: 'ttft-overhead',
      title: 'TTFT through the gateway minus direct to the engine',
      value: round(paired, 2),
      unit: 'ms',
      detail:
        `median of ${P.ttftRounds} paired differences, alternating order: HTTPS through nginx ` +
        '(fresh TCP + TLS each) − HTTP to the engine (fresh TCP); ' +
        `medians ${fmt(median(g), 1)} ms − ${fmt(median(d), 1)} ms = ${fmt(diff, 2)} ms; ` +
        `ratio ${fmt(median(g) / median(d), 3)}`,
      data: { gatewayMs: g, directMs: d, pairedMedianMs: paired, ratio: median(g) / median(d), phase: 'ttft' },
    });
  } catch (e) {
    run.skip(
      '3',
      'ttft-overhead',
      title,
      'ms',
      `the engine at ${direct.baseUrl} did not answer: ${(e as Error).message}`,
    );
  }
}

interface Conversation {
  t1: StreamResult;
  t2: StreamResult;
  ratio: number;
  systemTokens: number | null;
}

function strip(s: StreamResult) {
  const { text: _text, ...rest } = s;
  return rest;
}

/** Two turns of a Cline-like conversation with a fresh (uncached) system prompt. */
async function conversation(
  run: BenchRun,
  bed: Bed,
  label: string,
  extra?: Record<string, unknown>,
): Promise<Conversation> {
  const { client, ep } = bed;
  const sys = await clineSystemPrompt(bed.direct ?? ep, run.P.systemTokens, nonce());
  const t1msgs = firstTurn(sys.text);
  const t1 = await streamChat(client, ep.model, t1msgs, { maxTokens: 12, extra });
  const t2 = await streamChat(client, ep.model, secondTurn(t1msgs, t1.text), { maxTokens: 4, extra });
  run.log(
    `  ${label}: turn 1 TTFT ${fmt(t1.ttftMs, 0)} ms (${t1.promptTokens} prompt tokens), ` +
      `turn 2 TTFT ${fmt(t2.ttftMs, 0)} ms (${t2.promptTokens} prompt tokens, ${t2.cachedTokens ?? '?'} cached)`,
  );
  return { t1, t2, ratio: t2.ttftMs / t1.ttftMs, systemTokens: sys.tokens };
}

/** The conversation with the cache off: the test bed restarts its engine, llama-server takes a per-request switch. */
async function cacheOff(run: BenchRun, bed: Bed): Promise<{ off?: Conversation; offHow: string }> {
  const { engine, res } = bed;
  if (bed.testbed && engine && res.server) {
    // Restart the engine with caching disabled: the rendered command line with --no-cache-prompt.
    await res.server.stop();
    const args = [...withoutFlag(engine.args, '--cache-prompt'), '--no-cache-prompt'];
    res.server = await startEngine(bed.llamaServerBin!, args, engine.paths.engine.port);
    const offHow = 'engine restarted with --no-cache-prompt';
    return { offHow, off: await conversation(run, bed, 'caching disabled (--no-cache-prompt)') };
  }
  if (bed.kind === 'llama-server') {
    const offHow = 'cache_prompt:false in each request';
    return {
      offHow,
      off: await conversation(run, bed, 'caching disabled (cache_prompt:false)', { cache_prompt: false }),
    };
  }
  return { offHow: '' };
}

/** Figures 4a (the rendered settings) and 4b (cache off). */
export async function promptCacheFigures(run: BenchRun, bed: Bed): Promise<void> {
  run.mark('prompt-cache');
  const on = await conversation(run, bed, 'appliance settings (cache on)');
  run.figures.push({
    n: '4a',
    id: 'prompt-cache-on',
    title: `prompt cache on (as rendered): turn-2 TTFT ÷ turn-1 TTFT`,
    value: round(on.ratio),
    unit: '×',
    detail:
      `${fmt(on.t2.ttftMs, 0)} ms (${on.t2.promptTokens} tokens, ${on.t2.cachedTokens ?? '?'} cached) ÷ ` +
      `${fmt(on.t1.ttftMs, 0)} ms (${on.t1.promptTokens} tokens; ` +
      `system prompt ${on.systemTokens ?? '≈' + run.P.systemTokens} tokens)`,
    data: { turn1: strip(on.t1), turn2: strip(on.t2), systemTokens: on.systemTokens, phase: 'prompt-cache' },
  });
  const { off, offHow } = await cacheOff(run, bed);
  if (!off) {
    run.skip(
      '4b',
      'prompt-cache-off',
      'prompt cache off: turn-2 ÷ turn-1 TTFT',
      '×',
      'LocalAI has no per-request switch for its prompt cache and the bench does not restart a remote engine',
    );
    return;
  }
  run.figures.push({
    n: '4b',
    id: 'prompt-cache-off',
    title: `prompt cache off: turn-2 TTFT ÷ turn-1 TTFT`,
    value: round(off.ratio),
    unit: '×',
    detail:
      `${fmt(off.t2.ttftMs, 0)} ms ÷ ${fmt(off.t1.ttftMs, 0)} ms (${offHow}); ` +
      `the cache makes turn 2 ${fmt(off.t2.ttftMs / on.t2.ttftMs, 1)}× faster`,
    data: {
      turn1: strip(off.t1),
      turn2: strip(off.t2),
      how: offHow,
      cacheSpeedupTurn2: off.t2.ttftMs / on.t2.ttftMs,
      phase: 'prompt-cache',
    },
  });
}
