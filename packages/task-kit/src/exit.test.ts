import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { $ } from 'zx';

const exitModule = fileURLToPath(new URL('./exit.ts', import.meta.url));

describe('reapOnExit', () => {
  it('runs registered cleanups at exit, skips unregistered ones, survives a throwing one', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'task-kit-exit-'));
    const log = path.join(dir, 'log');
    const script = path.join(dir, 'child.ts');
    await writeFile(
      script,
      [
        `import { appendFileSync } from 'node:fs';`,
        `import { reapOnExit } from ${JSON.stringify(exitModule)};`,
        `reapOnExit(() => appendFileSync(${JSON.stringify(log)}, 'a\\n'));`,
        `const off = reapOnExit(() => appendFileSync(${JSON.stringify(log)}, 'b\\n'));`,
        `reapOnExit(() => { throw new Error('boom'); });`,
        `reapOnExit(() => appendFileSync(${JSON.stringify(log)}, 'c\\n'));`,
        `off();`,
        `process.exitCode = 3;`,
      ].join('\n'),
    );
    const r = await $({ nothrow: true, quiet: true })`tsx ${script}`;
    expect(r.exitCode).toBe(3);
    expect(await readFile(log, 'utf8')).toBe('a\nc\n');
  }, 20_000);
});
