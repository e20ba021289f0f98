import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from './log.js';

function capture(tty: boolean) {
  const stream = Object.assign(new PassThrough(), { isTTY: tty });
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString()));
  return { stream, text: () => chunks.join('') };
}

describe('logger', () => {
  it('masks registered secrets in every line, also in children', () => {
    const out = capture(false);
    const log = createLogger({ stream: out.stream });
    log.addSecret('sk-supersecretvalue1234');
    log.child('nginx').info('key is sk-supersecretvalue1234 in header');
    expect(out.text()).not.toContain('sk-supersecretvalue1234');
    expect(out.text()).toContain('[nginx]');
  });
  it('shows a registered secret as set without its length or any run of its characters', () => {
    const secret = 'Sup3rS3cretPassw0rd-4567';
    const out = capture(false);
    const log = createLogger({ stream: out.stream, timestamps: false });
    log.addSecret(secret);
    log.info(`value: ${secret};`);
    const text = out.text();
    for (let i = 0; i + 3 <= secret.length; i++) expect(text).not.toContain(secret.slice(i, i + 3));
    expect(text).not.toContain(String(secret.length));
    expect(text).toContain('value: [hidden];');
  });
  it('adds timestamps and no colour when not a TTY; honours levels and quiet', () => {
    const out = capture(false);
    const log = createLogger({ stream: out.stream, level: 'info' });
    log.debug('hidden');
    log.info('shown');
    expect(out.text()).toMatch(/^\d{4}-\d\d-\d\dT[^ ]+ INFO {2}shown\n$/);
    const q = capture(false);
    const quiet = createLogger({ stream: q.stream, quiet: true });
    quiet.info('no');
    quiet.warn('yes');
    expect(q.text()).toContain('yes');
    expect(q.text()).not.toContain('no\n');
  });
  it('colours on a TTY unless NO_COLOR is set', () => {
    const saved = process.env.NO_COLOR;
    delete process.env.NO_COLOR;
    const a = capture(true);
    createLogger({ stream: a.stream }).warn('w');
    expect(a.text()).toContain('\x1b[33m');
    process.env.NO_COLOR = '1';
    const b = capture(true);
    createLogger({ stream: b.stream }).warn('w');
    expect(b.text()).not.toContain('\x1b[');
    if (saved === undefined) delete process.env.NO_COLOR;
    else process.env.NO_COLOR = saved;
  });
});
