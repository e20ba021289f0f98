import { maskSecret } from './secrets.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const COLOR: Record<LogLevel, string> = { debug: '\x1b[2m', info: '\x1b[36m', warn: '\x1b[33m', error: '\x1b[31m' };

export interface LoggerOptions {
  level?: LogLevel;
  quiet?: boolean;
  /** Where lines go; stderr by default so stdout stays machine-readable. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  color?: boolean;
  timestamps?: boolean;
  scope?: string;
}

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Registers a secret: every later line has it masked, whatever the caller passes. */
  addSecret(secret: string): void;
  child(scope: string): Logger;
  /** Runs `fn`, logging the phase and its duration. */
  phase<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

function envLevel(): LogLevel | undefined {
  const v = process.env.SLM_COPILOT_LOG_LEVEL;
  return v === 'debug' || v === 'info' || v === 'warn' || v === 'error' ? v : undefined;
}

export function createLogger(options: LoggerOptions = {}, secrets: Set<string> = new Set()): Logger {
  const stream = options.stream ?? process.stderr;
  const level = options.level ?? envLevel() ?? 'info';
  const tty = Boolean(stream.isTTY);
  const color = options.color ?? (tty && !('NO_COLOR' in process.env));
  const timestamps = options.timestamps ?? !tty;
  const quiet = options.quiet ?? false;

  const redact = (text: string): string => {
    let out = text;
    for (const s of secrets) if (s.length > 0) out = out.split(s).join(maskSecret(s));
    return out;
  };

  const write = (lvl: LogLevel, message: string) => {
    if (ORDER[lvl] < ORDER[level]) return;
    if (quiet && ORDER[lvl] < ORDER.warn) return;
    const parts: string[] = [];
    if (timestamps) parts.push(new Date().toISOString());
    const tag = lvl.toUpperCase().padEnd(5);
    parts.push(color ? `${COLOR[lvl]}${tag}\x1b[0m` : tag);
    if (options.scope) parts.push(`[${options.scope}]`);
    parts.push(redact(message));
    stream.write(`${parts.join(' ')}\n`);
  };

  const logger: Logger = {
    debug: (m) => write('debug', m),
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m) => write('error', m),
    addSecret: (s) => {
      if (s) secrets.add(s);
    },
    child: (scope) => createLogger({ ...options, scope: options.scope ? `${options.scope}/${scope}` : scope }, secrets),
    async phase(name, fn) {
      const started = performance.now();
      write('info', `${name}…`);
      try {
        const result = await fn();
        write('info', `${name}: done in ${formatDuration(performance.now() - started)}`);
        return result;
      } catch (error) {
        write('error', `${name}: failed after ${formatDuration(performance.now() - started)}`);
        throw error;
      }
    },
  };
  return logger;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}
