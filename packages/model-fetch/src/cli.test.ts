import { readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { startMirror, type Mirror } from '@slm-copilot/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomGguf, runCli, settledRequests, startCli, tempDir } from '../test-support/index.js';

const SIZE = 4 * 1024 * 1024;
let root: string;
let mirror: Mirror;
let file: { data: Buffer; sha256: string; size: number };

beforeAll(async () => {
  root = await tempDir('cli');
  file = await randomGguf(path.join(root, 'model.gguf'), SIZE);
  mirror = await startMirror({ root });
});
afterAll(async () => {
  await mirror?.stop();
  await rm(root, { recursive: true, force: true });
});

const sizeOf = (f: string) =>
  stat(f).then(
    (s) => s.size,
    () => -1,
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pids of running wget processes whose command line mentions `needle`. */
async function wgetPids(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const cmd = await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '');
    const argv = cmd.split('\0');
    if (argv.some((a) => path.basename(a) === 'wget') && cmd.includes(needle)) pids.push(Number(d));
  }
  return pids;
}

describe('model-fetch CLI', () => {
  it('has --help on every command', async () => {
    const runs = await Promise.all(
      [[], ['fetch'], ['catalog'], ['resolve'], ['inspect'], ['verify']].map((sub) => runCli([...sub, '--help'])),
    );
    expect(runs[0]!.stdout).toMatch(/Commands:\n\s+fetch .*\n\s+catalog .*\n\s+resolve .*\n\s+inspect .*\n\s+verify /);
    for (const [i, sub] of ['fetch', 'catalog', 'resolve', 'inspect', 'verify'].entries()) {
      const r = runs[i + 1]!;
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: model-fetch ${sub}`);
      expect(r.stdout, sub).toMatch(/Examples:\n {2}model-fetch /);
    }
    expect(runs[1]!.stdout).toMatch(/--mirror <value>/);
  }, 60_000);

  it('usage errors (unknown, missing, bad flags): exit 2, one stderr line naming the flag, no write', async () => {
    const dest = path.join(root, 'never', 'm.gguf');
    const url = `${mirror.baseUrl}/model.gguf`;
    const cases: Array<[string[], string]> = [
      [['--bogus'], '--bogus'],
      ...['fetch', 'catalog', 'resolve', 'inspect', 'verify'].map((c): [string[], string] => [
        [c, '--bogus'],
        '--bogus',
      ]),
      [['fetch', '--url', url, '--sha256', file.sha256], '--dest'],
      [['fetch', '--dest'], '--dest'],
      [['fetch', '--url', url, '--sha256', file.sha256, '--dest', dest, '--tries', 'many'], '--tries'],
      [['fetch', '--url', url, '--sha256', file.sha256, '--dest', dest, '--progress', 'loud'], '--progress'],
      [['resolve', '--model', 'devstral-small-2'], '--lock'],
    ];
    const runs = await Promise.all(cases.map(([args]) => runCli(args)));
    for (const [i, [args, flag]] of cases.entries()) {
      const r = runs[i]!;
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n').filter(Boolean), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toContain(flag);
      expect(r.stdout, args.join(' ')).toBe('');
    }
    expect(await sizeOf(path.dirname(dest))).toBe(-1);
  }, 60_000);

  it('catalog lists the default model first, marked unverified when its file name was not checked', async () => {
    const r = await runCli(['catalog']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(
      new RegExp(
        '^devstral-small-2 \\(default\\) .*NOT CHECKED .*' +
          'unsloth/Devstral-Small-2-24B-Instruct-2512-GGUF/Devstral-Small-2-24B-Instruct-2512-Q4_K_M\\.gguf',
      ),
    );
    const j = JSON.parse((await runCli(['catalog', '--json'])).stdout) as Array<{ sha256: null }>;
    expect(j.every((e) => e.sha256 === null)).toBe(true);
  });

  it('exits 5 naming the URL for a 404, and 2 for bad usage', async () => {
    const url = `${mirror.baseUrl}/missing.gguf`;
    const r = await runCli(['fetch', '--url', url, '--sha256', file.sha256, '--dest', path.join(root, 'x', 'm.gguf')]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(`${url}: HTTP 404 Not Found`);
    const u = await runCli(['fetch', '--url', url, '--dest', path.join(root, 'x', 'm.gguf')]);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/--sha256 is required/);
  });

  it('a fetch SIGKILLed mid-download takes wget with it; the next run resumes from the bytes on disk', async () => {
    mirror.setFault('model.gguf', { bytesPerSecond: 800_000 });
    const dest = path.join(root, 'killed', 'model.gguf');
    const partial = `${dest}.partial`;
    const args = [
      'fetch',
      '--url',
      `${mirror.baseUrl}/model.gguf`,
      '--sha256',
      file.sha256,
      '--size',
      String(SIZE),
      '--dest',
      dest,
      '--tries',
      '1',
    ];
    const first = startCli(args);
    // tsx start-up is slow on a busy machine
    for (let i = 0; i < 1200 && (await sizeOf(partial)) < 1_000_000; i++) await sleep(50);
    const wget = await wgetPids(partial);
    expect(wget).toHaveLength(1);
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');
    // wget was started under `setpriv --pdeathsig KILL`: it must not outlive its parent
    for (let i = 0; i < 60 && (await wgetPids(partial)).length > 0; i++) await sleep(50);
    expect(await wgetPids(partial)).toEqual([]);
    const kept = await sizeOf(partial);
    expect(kept).toBeGreaterThanOrEqual(1_000_000);
    expect(kept).toBeLessThan(SIZE);
    await sleep(300);
    expect(await sizeOf(partial)).toBe(kept); // nobody is appending any more
    expect(await sizeOf(dest)).toBe(-1);

    mirror.setFault('model.gguf', undefined);
    mirror.requests.length = 0;
    const second = await runCli(args);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ dest, sha256: file.sha256, bytes: SIZE, downloaded: true });
    expect(second.stderr).toContain(`download ${mirror.baseUrl}/model.gguf from byte ${kept} (Range request)`);
    const reqs = await settledRequests(mirror, 'model.gguf', 1);
    expect(reqs.map((q) => [q.range, q.status, q.bytes])).toEqual([[`bytes=${kept}-`, 206, SIZE - kept]]);
    expect((await readFile(dest)).equals(file.data)).toBe(true);
    expect(await sizeOf(`${partial}.lock`)).toBe(-1); // the dead run's lock was taken over and released
  }, 60_000);
});
