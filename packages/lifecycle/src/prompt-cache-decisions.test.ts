// The prompt-cache command's pure decisions and its usage errors (the bin, from source).
import { nonEmptyLines, packageCli } from '@slm-copilot/task-kit/test-support/cli';
import { describe, expect, it } from 'vitest';
import { FREE_SPACE_RESERVE_BYTES, saveFits, slotsToSave } from './prompt-cache/slots.js';

const run = packageCli(import.meta.url);
const GiB = 1024 ** 3;

describe('which slots are saved, and when the disk allows it', () => {
  it('saves only slots that served a request in this engine lifetime and hold tokens', () => {
    expect(
      slotsToSave([
        { id: 0, is_processing: false, n_prompt_tokens: 9000 },
        // restored or never used since the start: what it holds is already on disk
        { id: 1, is_processing: false },
        { id: 2, is_processing: false, n_prompt_tokens: 0 },
        { id: 3, is_processing: true, n_prompt_tokens: 12 },
      ]),
    ).toEqual([0, 3]);
  });

  it('counts the file a save replaces, and keeps the reserve free', () => {
    expect(FREE_SPACE_RESERVE_BYTES).toBe(GiB);
    expect(saveFits(11 * GiB, 0, 10 * GiB)).toBe(true);
    expect(saveFits(11 * GiB - 1, 0, 10 * GiB)).toBe(false);
    expect(saveFits(1 * GiB, 10 * GiB, 10 * GiB)).toBe(true);
  });
});

describe('slm-copilot-service cache: usage errors are one line, exit 2, nothing done', () => {
  it.each([
    [['cache', 'save', '--max-file-bytes', '1'], /missing option --dir/],
    [['cache', 'save', '--dir', 'relative', '--max-file-bytes', '1'], /--dir must be an absolute path/],
    [['cache', 'save', '--dir', '/nonexistent'], /missing option --max-file-bytes/],
    [['cache', 'restore', '--dir', '/nonexistent', '--engine', 'ftp://x'], /--engine must be an http:\/\/ URL/],
    [['cache', 'restore', '--dir', '/nonexistent', '--ready-timeout', 'soon'], /--ready-timeout must be a number/],
    [['cache', 'purge'], /unknown command "purge"/],
  ])('%j', async (args, message) => {
    const r = await run(args);
    expect(r.exitCode).toBe(2);
    expect(nonEmptyLines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('save into a directory configure deleted (a new configuration) does nothing and exits 0', async () => {
    const r = await run(['cache', 'save', '--dir', '/nonexistent/x', '--max-file-bytes', '1']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/nothing saved: \/nonexistent\/x does not exist/);
  });

  it('restore with no saved slot says so and exits 0 without waiting for an engine', async () => {
    const r = await run(['cache', 'restore', '--dir', '/nonexistent', '--engine', 'http://127.0.0.1:9']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/nothing to restore/);
  });
});
