// Test support: loggers for code under test (the tests assert on results, or on what an operator reads).
import type { Logger } from '../src/log.js';

/** A logger that drops everything. */
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

/** A logger that keeps every line, prefixed with its level (`info …`, `phase <name>`). */
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
