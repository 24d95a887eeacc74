/** The one place the CLI turns an error into output and an exit code. */
import { CommanderError, type Command } from 'commander';
import { EnclaveError, errorFlags, isErrorCode } from '../../core/index.js';
import { escapeMessage, escapeText, stringifyForTerminal } from './_escape.js';

/**
 * Exit codes: 0 ok, 1 the operation failed (an error code was printed), 2 bad usage (a code
 * flagged `usage`, or the command line did not parse). README.md, "From the terminal", lists them.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** An error as the CLI prints it: its stable code, message and, for an enclave's own codes, what the enclave said. */
export interface PrintedError {
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
}

/**
 * The code, message, detail and exit code of any error. Unknown errors are `internal`, without
 * their stack unless ENCLAVE_DEBUG is set.
 */
export function describeError(err: unknown): { error: PrintedError; exit: number } {
  if (err instanceof EnclaveError) {
    // Every layer's error (AttestationError and the CLI's own UsageError included) extends the one
    // root; whether the caller or the operation is at fault is a flag of the code (core/error-codes.ts),
    // read from this copy's table (an error of another copy of the package may carry a newer code).
    const { code, message, detail } = err;
    const exit = isErrorCode(code) && errorFlags(code).usage ? EXIT.usage : EXIT.failed;
    return { error: detail === undefined ? { code, message } : { code, message, detail }, exit };
  }
  if (err instanceof CommanderError) {
    // The command line did not parse (commander's codes are `commander.<what>`), or help/version was shown.
    // `commander.help` with a non-zero exit: no command was given, and the help went to stderr.
    const message = err.code === 'commander.help' ? 'No command given: see `enclave --help`.' : err.message.replace(/^error:\s*/, '');
    return { error: { code: 'usage', message }, exit: err.exitCode === 0 ? EXIT.ok : EXIT.usage };
  }
  let message = err instanceof Error ? err.message : String(err);
  if (process.env.ENCLAVE_DEBUG && err instanceof Error && err.stack) message = err.stack;
  return { error: { code: 'internal', message }, exit: EXIT.failed };
}

/**
 * Prints `error[<code>]: <message>` (or `{"error": {...}}` with `--json`) on stderr and sets the
 * exit code. The message and the enclave's detail are escaped (./_escape.ts): both may carry text
 * a module or an enclave chose. With `lines`, a text message is printed as its lines, each escaped.
 */
export function handleError(err: unknown, json = false, options: { readonly lines?: boolean } = {}): void {
  const { error, exit } = describeError(err);
  if (err instanceof CommanderError && (exit === EXIT.ok || !json)) {
    // Commander has already printed its message (or the help, or the version).
    process.exitCode = exit;
    return;
  }
  if (json) {
    process.stderr.write(`${stringifyForTerminal({ error })}\n`);
  } else {
    // `lines`: the message is lines (a compiler's diagnostics), each escaped and printed as a line.
    const message = options.lines === true ? error.message.split('\n').map(escapeMessage).join('\n') : escapeMessage(error.message);
    process.stderr.write(`error[${error.code}]: ${message}${error.detail === undefined ? '' : `\n  enclave says: ${escapeText(error.detail)}`}\n`);
  }
  process.exitCode = exit;
}

/** True when the command line asks for JSON errors: `--json` anywhere before a `--`. */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * Commander's own errors (an unknown option, a missing argument, a choice not offered) in the CLI's
 * form: `error[usage]: <message>` as text; with `--json`, nothing from commander (then
 * {@link handleError} prints the one JSON object). Help and version still go to stdout.
 */
export function parserOutput(commands: readonly Command[], json: boolean): void {
  for (const command of commands) {
    if (json) command.configureOutput({ outputError: () => undefined, writeErr: () => undefined }).showHelpAfterError(false);
    else command.configureOutput({ outputError: (text, write) => write(text.replace(/^error:\s*/, 'error[usage]: ')) });
  }
}
