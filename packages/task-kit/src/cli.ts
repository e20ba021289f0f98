import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createLogger, type Logger } from './log.js';
import { ExitCode, formatError, isTaskError, type TaskError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface CommandSpec<O extends Options> {
  /** e.g. `context-schema validate` */
  name: string;
  summary: string;
  usage: string;
  options: O;
  /** Lines after the option list: examples, environment variables. */
  details?: string;
  allowPositionals?: boolean;
}

/** Options every command shares. */
export const commonOptions = {
  help: { type: 'boolean', short: 'h', default: false },
  quiet: { type: 'boolean', short: 'q', default: false },
  verbose: { type: 'boolean', short: 'v', default: false },
} as const satisfies Options;

export function helpText(spec: CommandSpec<Options>, optionHelp: Record<string, string>): string {
  const lines = [`${spec.name} — ${spec.summary}`, '', `Usage: ${spec.usage}`, '', 'Options:'];
  const all = { ...spec.options, ...commonOptions };
  for (const [name, def] of Object.entries(all)) {
    const value = (def.type as string) === 'string' ? ' <value>' : '';
    const flag = `${def.short ? `-${def.short}, ` : '    '}--${name}${value}`;
    const help =
      optionHelp[name] ??
      (
        { help: 'show this help', quiet: 'only warnings and errors', verbose: 'debug output' } as Record<string, string>
      )[name] ??
      '';
    lines.push(`  ${flag.padEnd(30)} ${help}`);
  }
  if (spec.details) lines.push('', spec.details.trimEnd());
  return `${lines.join('\n')}\n`;
}

/**
 * npm and pnpm pass the user's own `--` through (`pnpm run x -- --help`), and scripts end with one to keep
 * Node from reading their flags: leading `--` are not arguments.
 */
export function dropLeadingDashes(argv: readonly string[]): string[] {
  let i = 0;
  while (argv[i] === '--') i++;
  return argv.slice(i);
}

/** One line for a parseArgs error: `<command>: unknown option --bogus (see <command> --help)`. */
export function usageLine(command: string, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  const text = unknown ? `unknown option ${unknown[1]}` : (message.split('\n')[0] ?? message).replace(/\.$/, '');
  return `${command}: ${text} (see ${command} --help)`;
}

/**
 * One line for a usage error a command found after parsing (missing flag, bad value):
 * `<command>: <message>[; <hint>] (see <command> --help)`; a hint that only points at --help is dropped.
 */
export function usageErrorLine(command: string, error: TaskError): string {
  const hint = error.hint && !/--help\b/.test(error.hint) ? `; ${error.hint}` : '';
  const text = `${error.message.split('\n').join('; ')}${hint}`;
  return `${command}: ${text} (see ${command} --help)`;
}

/**
 * Parses argv, prints --help, builds the logger and turns errors into exit codes:
 * a usage error (unknown or missing flag, bad value) is one line on stderr and exit 2;
 * another TaskError prints its message and hint (never a stack); anything else is a bug and prints its stack.
 */
export async function runCommand<O extends Options>(
  spec: CommandSpec<O>,
  optionHelp: Record<string, string>,
  argv: string[],
  main: (args: { values: Record<string, unknown>; positionals: string[]; log: Logger }) => Promise<number | void>,
): Promise<number> {
  let log = createLogger();
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args: dropLeadingDashes(argv),
        options: { ...spec.options, ...commonOptions },
        allowPositionals: spec.allowPositionals ?? false,
        strict: true,
      });
    } catch (error) {
      // A usage error is one line on stderr, naming the flag: no timestamp, no hint block, no stack.
      process.stderr.write(`${usageLine(spec.name, error)}\n`);
      return ExitCode.usage;
    }
    const values = parsed.values as Record<string, unknown>;
    if (values.help) {
      process.stdout.write(helpText(spec as unknown as CommandSpec<Options>, optionHelp));
      return ExitCode.ok;
    }
    log = createLogger({ quiet: Boolean(values.quiet), level: values.verbose ? 'debug' : undefined });
    return (await main({ values, positionals: parsed.positionals, log })) ?? ExitCode.ok;
  } catch (error) {
    if (isTaskError(error) && error.exitCode === ExitCode.usage) {
      process.stderr.write(`${usageErrorLine(spec.name, error)}\n`);
      return ExitCode.usage;
    }
    log.error(formatError(error));
    return isTaskError(error) ? error.exitCode : ExitCode.failure;
  }
}

/** Dispatches `tool <subcommand> …` to one of several commands. */
export async function runSubcommands(
  tool: string,
  summary: string,
  commands: Record<string, { summary: string; run: (argv: string[]) => Promise<number> }>,
  argv: string[],
): Promise<number> {
  const [sub, ...rest] = dropLeadingDashes(argv);
  const list = Object.entries(commands)
    .map(([name, c]) => `  ${name.padEnd(14)} ${c.summary}`)
    .join('\n');
  const help =
    `${tool} — ${summary}\n\nUsage: ${tool} <command> [options]\n\nCommands:\n${list}\n\n` +
    `Run "${tool} <command> --help" for a command's options.\n`;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(help);
    return sub === undefined ? ExitCode.usage : ExitCode.ok;
  }
  const command = commands[sub];
  if (!command) {
    process.stderr.write(`${tool}: unknown command "${sub}" (see ${tool} --help)\n`);
    return ExitCode.usage;
  }
  return command.run(rest);
}
