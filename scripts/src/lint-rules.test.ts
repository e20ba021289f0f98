// The size and line rules of eslint.config.mjs hold: a violation of each fails lint, and no inline
// comment can switch a rule off (so they keep holding after the clean-up that introduced them).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const eslint = new ESLint({ cwd: repo });
const rulesHit = async (text: string, file = 'packages/task-kit/src/probe.ts') => {
  const [result] = await eslint.lintText(text, { filePath: path.join(repo, file) });
  return result!.messages.map((m) => m.ruleId);
};
const fn = (name: string, lines: number) =>
  `export function ${name}(): number {\n  let v = 0;\n${'  v += 1;\n'.repeat(lines)}  return v;\n}\n`;

describe('lint rules', () => {
  it('a clean module passes', async () => {
    expect(await rulesHit(fn('small', 10))).toEqual([]);
  });

  it('a line over 120 characters fails, strings included', async () => {
    expect(await rulesHit(`export const s = '${'x'.repeat(120)}';\n`)).toEqual(['max-len']);
  });

  it('a function over 100 lines fails; in a test file it does not', async () => {
    expect(await rulesHit(fn('big', 101))).toContain('max-lines-per-function');
    expect(await rulesHit(fn('big', 101), 'packages/task-kit/src/probe.test.ts')).not.toContain(
      'max-lines-per-function',
    );
  });

  it('a file over 400 lines of code fails', async () => {
    const text = Array.from({ length: 6 }, (_, i) => fn(`f${i}`, 70)).join('\n');
    expect(await rulesHit(text)).toContain('max-lines');
  });

  it('an inline eslint-disable does not switch a rule off', async () => {
    const text = `/* eslint-disable max-len */\nexport const s = '${'x'.repeat(120)}';\n`;
    expect(await rulesHit(text)).toContain('max-len');
  });
});
