/** Exit codes every task uses, so scripts and the lifecycle runner can tell failures apart. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  invalidConfig: 3,
  environment: 4,
  network: 5,
  integrity: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface TaskErrorOptions {
  exitCode?: ExitCode;
  /** One line telling the user what to do about it. */
  hint?: string;
  cause?: unknown;
}

/** An expected failure: printed as a message (and hint), never as a stack trace. */
export class TaskError extends Error {
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;
  constructor(message: string, options: TaskErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TaskError';
    this.exitCode = options.exitCode ?? ExitCode.failure;
    this.hint = options.hint;
  }
}

export class UsageError extends TaskError {
  constructor(message: string, hint?: string) {
    super(message, { exitCode: ExitCode.usage, hint });
    this.name = 'UsageError';
  }
}

export function isTaskError(error: unknown): error is TaskError {
  return error instanceof TaskError;
}

/** Text for the user: the message, the hint, and the cause chain for unexpected errors. */
export function formatError(error: unknown): string {
  if (isTaskError(error)) return error.hint ? `${error.message}\n  hint: ${error.hint}` : error.message;
  if (error instanceof Error) return error.stack ?? error.message;
  return String(error);
}
