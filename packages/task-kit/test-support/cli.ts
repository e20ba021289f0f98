// Test support: a package's bin run as a user runs it (a process: exit code, stdout, stderr), from source.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { $, type ProcessOutput } from 'zx';

/**
 * The `src/cli.ts` of the package a test file belongs to, run with tsx (source condition, no colours).
 * `testFileUrl` is the test's `import.meta.url` (a file in the package's `src/`).
 */
export function packageCli(
  testFileUrl: string,
  baseEnv: NodeJS.ProcessEnv = {},
): (args: string[], env?: NodeJS.ProcessEnv) => Promise<ProcessOutput> {
  const pkg = path.resolve(path.dirname(fileURLToPath(testFileUrl)), '..');
  return (args, env = {}) =>
    $({
      cwd: pkg,
      nothrow: true,
      quiet: true,
      env: { ...process.env, NO_COLOR: '1', ...baseEnv, ...env },
    })`node_modules/.bin/tsx --conditions=source src/cli.ts ${args}`;
}

/** The non-empty lines of an output (what "one line on stderr" is judged by). */
export const nonEmptyLines = (text: string): string[] => text.split('\n').filter((l) => l.length > 0);
