import type { Logger } from '@slm-copilot/task-kit';

/** A logger that drops everything (the code under test logs; the tests assert on results). */
export const quietLog: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  addSecret() {},
  child() {
    return quietLog;
  },
  phase: <T>(_: string, fn: () => Promise<T>) => fn(),
} as unknown as Logger;

/** A logger that keeps every line (to assert on what an operator would read). */
export function captureLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log: Logger = {
    debug: (m: string) => lines.push(`debug ${m}`),
    info: (m: string) => lines.push(`info ${m}`),
    warn: (m: string) => lines.push(`warn ${m}`),
    error: (m: string) => lines.push(`error ${m}`),
    addSecret() {},
    child: () => log,
    phase: <T>(name: string, fn: () => Promise<T>) => {
      lines.push(`phase ${name}`);
      return fn();
    },
  } as unknown as Logger;
  return { log, lines };
}
