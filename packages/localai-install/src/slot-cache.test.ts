/**
 * The saved prompt cache's key and purge decisions (pure) and its unit's bounds: which inputs make a
 * saved slot unusable, when a new id is minted, what is deleted.
 */
import { describe, expect, it } from 'vitest';
import { appliancePaths, parseContext } from '@slm-copilot/context-schema';
import { devstralFacts, vm16x32 } from '../test-support/fixtures.js';
import { engineCacheFingerprint, loadChatTemplate } from './render.js';
import { planEngine } from './plan.js';
import { ASSUMED_DISK_BYTES_PER_SECOND, slotCacheTimeouts } from './slot-cache-unit.js';
import {
  decideSlotCache,
  kvShapingFlags,
  slotCacheDir,
  slotCacheEnabled,
  slotCacheFingerprint,
  staleSlotCacheEntries,
  type SlotCacheInputs,
} from './slot-cache.js';

const base: SlotCacheInputs = {
  modelSha256: 'a'.repeat(64),
  engineSha256: 'b'.repeat(64),
  chatTemplate: '{{ messages }}',
  engineArgs: ['--ctx-size', '65536', '--parallel', '1', '--cache-type-k', 'f16', '--cache-type-v', 'f16'],
  apiKeys: ['sk-main-0123456789', 'sk-extra-0123456789'],
};

describe('slotCacheFingerprint', () => {
  it('changes with the model, engine build, template, every KV-shaping flag and the API keys', () => {
    const f = slotCacheFingerprint(base);
    expect(f).toMatch(/^[0-9a-f]{64}$/);
    const changed: Array<[string, Partial<SlotCacheInputs>]> = [
      ['model', { modelSha256: 'c'.repeat(64) }],
      ['engine build', { engineSha256: null }],
      ['template', { chatTemplate: '{{ messages }} ' }],
      ['context', { engineArgs: base.engineArgs.map((a) => (a === '65536' ? '32768' : a)) }],
      ['slots', { engineArgs: base.engineArgs.map((a, i) => (i === 3 ? '2' : a)) }],
      ['K type', { engineArgs: base.engineArgs.map((a, i) => (i === 5 ? 'q8_0' : a)) }],
      ['V type', { engineArgs: base.engineArgs.map((a, i) => (i === 7 ? 'q8_0' : a)) }],
      ['flash attention', { engineArgs: [...base.engineArgs, '--flash-attn', 'off'] }],
      ['a key removed', { apiKeys: ['sk-main-0123456789'] }],
      ['a key changed', { apiKeys: ['sk-main-0123456789', 'sk-extra-0123456780'] }],
    ];
    for (const [what, change] of changed) {
      expect(slotCacheFingerprint({ ...base, ...change }), what).not.toBe(f);
    }
  });

  it('ignores flags that do not shape the KV cache, the order of flags and keys', () => {
    const f = slotCacheFingerprint(base);
    expect(
      slotCacheFingerprint({ ...base, engineArgs: [...base.engineArgs, '--threads', '4', '--n-predict', '16'] }),
    ).toBe(f);
    const reordered = [...base.engineArgs.slice(4), ...base.engineArgs.slice(0, 4)];
    expect(slotCacheFingerprint({ ...base, engineArgs: reordered })).toBe(f);
    expect(slotCacheFingerprint({ ...base, apiKeys: [...base.apiKeys].reverse() })).toBe(f);
  });

  it('reads KV-shaping flags with and without values', () => {
    expect(kvShapingFlags(['--threads', '8', '--swa-full', '--parallel', '2', '--ctx-size', '4096'])).toEqual([
      ['--ctx-size', '4096'],
      ['--parallel', '2'],
      ['--swa-full'],
    ]);
  });
});

describe('engineCacheFingerprint (the rendered engine)', () => {
  const facts = { modelSha256: 'a'.repeat(64), engineSha256: null, apiKeys: ['sk-main-0123456789'] };
  const inputs = async (context: Record<string, string>) => ({
    config: parseContext({ ONEAPP_COPILOT_ENGINE: 'llama-server', ...context }),
    model: devstralFacts,
    host: vm16x32,
    paths: appliancePaths(),
    chatTemplate: await loadChatTemplate(),
  });

  it('is null when persistence is off or the engine is LocalAI (no equivalent)', async () => {
    expect(engineCacheFingerprint(await inputs({ ONEAPP_COPILOT_PROMPT_CACHE_PERSIST: 'NO' }), facts)).toBeNull();
    expect(engineCacheFingerprint(await inputs({ ONEAPP_COPILOT_ENGINE: 'localai' }), facts)).toBeNull();
    expect(slotCacheEnabled(parseContext({ ONEAPP_COPILOT_ENGINE: 'llama-server' }))).toBe(true);
  });

  it('follows the plan: a context, KV type or slot count change is a new key; a thread count is not', async () => {
    const f = engineCacheFingerprint(await inputs({}), facts);
    expect(f).toMatch(/^[0-9a-f]{64}$/);
    const changes: Record<string, string>[] = [
      { ONEAPP_COPILOT_CONTEXT_SIZE: '32768' },
      { ONEAPP_COPILOT_KV_CACHE_TYPE: 'q8_0' },
      { ONEAPP_COPILOT_PARALLEL: '2' },
    ];
    for (const change of changes) {
      expect(engineCacheFingerprint(await inputs(change), facts), JSON.stringify(change)).not.toBe(f);
    }
    expect(engineCacheFingerprint(await inputs({ ONEAPP_COPILOT_THREADS: '4' }), facts)).toBe(f);
    expect(engineCacheFingerprint({ ...(await inputs({})), chatTemplate: 'other' }, facts)).not.toBe(f);
  });
});

describe('decideSlotCache and the purge', () => {
  const mint = (() => {
    let n = 0;
    return () => (++n).toString(16).padStart(32, '0');
  })();

  it('keeps the id while the fingerprint holds, mints a new one when it changes, none when off', () => {
    const first = decideSlotCache(null, 'f1', mint)!;
    expect(first.fingerprint).toBe('f1');
    expect(first.id).toMatch(/^[0-9a-f]{32}$/);
    expect(decideSlotCache(first, 'f1', mint)).toBe(first);
    const second = decideSlotCache(first, 'f2', mint)!;
    expect(second.id).not.toBe(first.id);
    expect(decideSlotCache(second, null, mint)).toBeNull();
    // a stored state that is not ours (hand-edited id) is replaced, never used as a path
    expect(decideSlotCache({ fingerprint: 'f1', id: '../etc' }, 'f1', mint)!.id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('deletes every entry but the current id', () => {
    const keep = '0'.repeat(32);
    expect(staleSlotCacheEntries([`${'1'.repeat(32)}`, keep, 'stray'], keep)).toEqual(['1'.repeat(32), 'stray']);
    expect(staleSlotCacheEntries([keep, 'x'], null)).toEqual([keep, 'x']);
  });

  it('places the directory under the engine state directory, and only for a well-formed id', () => {
    const id = 'f'.repeat(32);
    expect(slotCacheDir(appliancePaths(), id)).toBe(`/var/lib/slm-copilot-engine/slot-cache/${id}`);
    expect(slotCacheDir(appliancePaths('/tmp/r'), id)).toBe(`/tmp/r/var/lib/slm-copilot-engine/slot-cache/${id}`);
    expect(() => slotCacheDir(appliancePaths(), '../../etc')).toThrow(/not a slot-cache id/);
  });
});

describe('the prompt-cache unit bounds', () => {
  it('the stop bound covers every slot file at its largest at the assumed disk speed', () => {
    for (const parallel of ['1', '2']) {
      const plan = planEngine(parseContext({ ONEAPP_COPILOT_PARALLEL: parallel }), devstralFacts, vm16x32);
      const t = slotCacheTimeouts(plan, 900);
      const transfer = plan.slotState.diskBytes / ASSUMED_DISK_BYTES_PER_SECOND;
      expect(t.stopSeconds).toBeGreaterThanOrEqual(transfer);
      expect(t.startSeconds).toBeGreaterThanOrEqual(900 + transfer);
      expect(t.readySeconds).toBe(900);
      // printed for the README: the default plan's file bound and the stop bound it gives
      console.log(
        `parallel ${parallel}: ${plan.contextPerSlot} tokens/slot, file ≤ ${plan.slotState.fileMaxBytes} B, ` +
          `disk ≤ ${plan.slotState.diskBytes} B → TimeoutStopSec=${t.stopSeconds}`,
      );
    }
  });
});
