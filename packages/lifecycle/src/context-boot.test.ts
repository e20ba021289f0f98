/**
 * appliance/slm-copilot-context-boot, the shipped shell script that reads the CONTEXT CD where one-context
 * is absent, run for real with /bin/sh. Test doubles, named as such: `blkid`, `mount` and `umount` on PATH
 * (a directory stands in for the CD: no block device or root here) and the `node` it execs (it records its
 * arguments and the context file it was given; the lifecycle's `reconfigure` itself is reconfigure.test.ts's).
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { $ } from 'zx';

const SCRIPT = fileURLToPath(new URL('../../../appliance/slm-copilot-context-boot', import.meta.url));
const roots: string[] = [];
afterAll(() => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));

const DOUBLES: Record<string, string> = {
  // blkid -L CONTEXT: the device while the drive holds a CD, else exit 2 (blkid's "not found")
  // (a CD in $FAKE_LATE_CD goes into the drive at the third look: a swap in progress)
  blkid:
    'n=$(($(cat "$FAKE_CD.looks" 2>/dev/null || echo 0) + 1)); echo $n >"$FAKE_CD.looks"\n' +
    '[ "$n" -ge 3 ] && [ -f "$FAKE_LATE_CD" ] && mv "$FAKE_LATE_CD" "$FAKE_CD/context.sh"\n' +
    '[ -f "$FAKE_CD/context.sh" ] && echo /dev/fake-cd || exit 2',
  // mount -o ro DEV DIR (context.sh, and token.txt when the CD has one)
  mount: 'cp "$FAKE_CD"/* "$4/"',
  umount: 'rm -f "$1"/*',
  // node SERVICE reconfigure [--if-changed] --context-file FILE: one line per run; the first run may swap the CD
  node:
    'for a; do f=$a; done; printf "%s | %s\\n" "$*" "$(cat "$f")" >>"$FAKE_RUNS"\n' +
    'echo "${TOKENTXT-(unset)}" >>"$FAKE_RUNS.token"\n' +
    'if [ -f "$FAKE_SWAP_TO" ]; then mv "$FAKE_SWAP_TO" "$FAKE_CD/context.sh"; fi\n' +
    'exit "${FAKE_EXIT:-0}"',
};

async function setup(cd: string | null, swapTo?: string, late?: string, token?: string) {
  const dir = await mkdtemp(path.join(tmpdir(), 'context-boot-'));
  roots.push(dir);
  const bin = path.join(dir, 'bin');
  const opt = path.join(dir, 'opt');
  await mkdir(bin);
  await mkdir(path.join(opt, 'node/bin'), { recursive: true });
  await mkdir(path.join(dir, 'cd'));
  for (const [name, body] of Object.entries(DOUBLES))
    await writeFile(path.join(name === 'node' ? path.join(opt, 'node/bin') : bin, name), `#!/bin/sh\n${body}\n`, {
      mode: 0o755,
    });
  if (cd !== null) await writeFile(path.join(dir, 'cd/context.sh'), cd);
  if (token !== undefined) await writeFile(path.join(dir, 'cd/token.txt'), token);
  if (swapTo !== undefined) await writeFile(path.join(dir, 'swap.sh'), swapTo);
  if (late !== undefined) await writeFile(path.join(dir, 'late.sh'), late);
  const run = async (mode?: string, exit = 0) => {
    const r = await $({
      nothrow: true,
      quiet: true,
      env: {
        ...process.env,
        PATH: `${bin}:${process.env.PATH}`,
        FAKE_CD: path.join(dir, 'cd'),
        FAKE_RUNS: path.join(dir, 'runs'),
        FAKE_SWAP_TO: path.join(dir, 'swap.sh'),
        FAKE_LATE_CD: path.join(dir, 'late.sh'),
        FAKE_EXIT: String(exit),
        SLM_COPILOT_RUN_DIR: path.join(dir, 'run'),
        SLM_COPILOT_OPT_DIR: opt,
        SLM_COPILOT_SETTLE_SECONDS: '0',
        TOKENTXT: 'inherited, not from this CD',
      },
    })`sh ${SCRIPT} ${mode === undefined ? [] : [mode]}`;
    const runs = await readFile(path.join(dir, 'runs'), 'utf8').catch(() => '');
    const tokens = await readFile(path.join(dir, 'runs.token'), 'utf8').catch(() => '');
    const lines = (t: string) => t.split('\n').filter(Boolean);
    return { exitCode: r.exitCode, stderr: r.stderr, runs: lines(runs), tokens: lines(tokens) };
  };
  return { dir, run, service: path.join(opt, 'bin/slm-copilot-service.mjs'), runDir: path.join(dir, 'run') };
}

describe('slm-copilot-context-boot', () => {
  it('at boot: applies the CD with `reconfigure` (never --if-changed); no CD: an empty context', async () => {
    const withCd = await setup("ONEAPP_COPILOT_RATE_LIMIT='5'\n");
    const r = await withCd.run();
    expect(r.exitCode).toBe(0);
    const file = path.join(withCd.runDir, 'context-boot.sh');
    expect(r.runs).toEqual([`${withCd.service} reconfigure --context-file ${file} | ONEAPP_COPILOT_RATE_LIMIT='5'`]);

    const noCd = await setup(null);
    const empty = await noCd.run('boot');
    expect(empty.exitCode).toBe(0);
    expect(empty.stderr).toContain('no CONTEXT CD attached; configuring with defaults');
    expect(empty.runs).toEqual([
      `${noCd.service} reconfigure --context-file ${path.join(noCd.runDir, 'context-boot.sh')} | `,
    ]);
  });

  it('on a change: applies with --if-changed once when the CD stays; again when swapped during the run', async () => {
    const stable = await setup("A='1'\n");
    const once = await stable.run('changed');
    expect(once.exitCode).toBe(0);
    const file = path.join(stable.runDir, 'context-changed.sh');
    expect(once.runs).toEqual([`${stable.service} reconfigure --if-changed --context-file ${file} | A='1'`]);

    const swapped = await setup("A='1'\n", "A='2'\n");
    const twice = await swapped.run('changed');
    expect(twice.exitCode).toBe(0);
    expect(twice.runs.map((l) => l.split(' | ')[1])).toEqual(["A='1'", "A='2'"]);
  });

  it('on a change: no CD in the drive does nothing; a refused context ends with its exit code', async () => {
    const ejected = await setup(null);
    const none = await ejected.run('changed');
    expect(none.exitCode).toBe(0);
    expect(none.runs).toEqual([]);
    expect(none.stderr).toContain('no CONTEXT CD in the drive');
    // an empty drive is looked at again for a while: the new CD of a swap in progress is applied
    const inProgress = await setup(null, undefined, "B='1'\n");
    const late = await inProgress.run('changed');
    expect(late.exitCode).toBe(0);
    expect(late.runs.map((l) => l.split(' | ')[1])).toEqual(["B='1'"]);

    const bad = await setup("ONEAPP_COPILOT_CONTEXT_SIZE='lots'\n");
    const refused = await bad.run('changed', 2);
    expect(refused.exitCode).toBe(2);
    expect(refused.runs).toHaveLength(1);
  });

  it("hands the CD's OneGate token.txt to the run as TOKENTXT (as one-context does), never a stale one", async () => {
    const withToken = await setup("VMID='7'\n", undefined, undefined, 'tok-7\n');
    expect((await withToken.run('boot')).tokens).toEqual(['tok-7']);
    expect((await withToken.run('changed')).tokens).toEqual(['tok-7', 'tok-7']);
    // a CD without a token: the run gets none, not the one in the caller's environment
    const without = await setup("VMID='7'\n");
    expect((await without.run('boot')).tokens).toEqual(['(unset)']);
    // the token is not left in any file of the run directory
    const entries = await readdir(withToken.runDir, { recursive: true, withFileTypes: true });
    const files = entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(await readFile(f, 'utf8')).not.toContain('tok-7');
  });

  it('refuses an unknown mode with a usage line', async () => {
    const s = await setup(null);
    const r = await s.run('bogus');
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toMatch(/^usage: .*slm-copilot-context-boot \[boot\|changed\]$/);
    expect(r.runs).toEqual([]);
  });
});
