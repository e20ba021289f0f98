// The DNS catcher with a real resolver (node:dns, c-ares): each name asked is recorded and answered
// NXDOMAIN, so the lookup fails at once as "not found".
import { Resolver } from 'node:dns/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { nxdomain, parseQuestion, startDnsCatcher, type DnsCatcher } from './dns-catcher.js';

const catchers: DnsCatcher[] = [];
afterAll(async () => {
  for (const c of catchers) await c.close();
});

describe('startDnsCatcher', () => {
  it('records each name asked and answers NXDOMAIN', async () => {
    const c = await startDnsCatcher('127.0.0.1', 0);
    catchers.push(c);
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${c.port}`]);
    await expect(resolver.resolve4('telemetry.agent.example')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolver.resolve6('Update.Agent.Example')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(c.queries).toEqual([
      { name: 'telemetry.agent.example', type: 'A', answer: 'NXDOMAIN' },
      { name: 'update.agent.example', type: 'AAAA', answer: 'NXDOMAIN' },
    ]);
  });

  it('ignores what is not a query (a response, a truncated message)', () => {
    const query = Buffer.from('12340100000100000000000003666f6f0000010001', 'hex');
    const q = parseQuestion(query);
    expect(q).toEqual({ name: 'foo', qtype: 1, end: query.length });
    const answer = nxdomain(query, q!);
    expect(answer.readUInt16BE(0)).toBe(0x1234);
    expect(answer[3]! & 0x0f).toBe(3);
    expect(parseQuestion(answer)).toBeNull();
    expect(parseQuestion(query.subarray(0, 15))).toBeNull();
  });
});
