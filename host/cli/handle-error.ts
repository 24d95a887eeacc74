/** The one place the CLI turns an error into output and an exit code. */
import { CommanderError } from 'commander';
import { EnclaveError, errorFlags, isErrorCode } from '../../core/index.js';
import { escapeMessage, escapeText, stringifyForTerminal } from './_escape.js';

/** Exit codes: 0 ok, 1 the operation failed (an error code was printed), 2 bad usage (a code flagged `usage`). */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/**
 * Prints `error[<code>]: <message>` (or JSON with `--json`) on stderr and sets the exit code.
 * Unknown errors print as `internal` without their stack, unless ENCLAVE_DEBUG is set. The message
 * and the enclave's detail are escaped (./_escape.ts): both may carry text a module or an enclave chose.
 */
export function handleError(err: unknown, json = false): void {
  let code: string;
  let message: string;
  let detail: string | undefined;
  let exit: number = EXIT.failed;
  if (err instanceof EnclaveError) {
    // Every layer's error (AttestationError and the CLI's own UsageError included) extends the one
    // root; whether the caller or the operation is at fault is a flag of the code (core/error-codes.ts),
    // read from this copy's table (an error of another copy of the package may carry a newer code).
    ({ code, message, detail } = err);
    if (isErrorCode(code) && errorFlags(code).usage) exit = EXIT.usage;
  } else if (err instanceof CommanderError) {
    // Commander has already printed its message (or the help).
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    return;
  } else {
    code = 'internal';
    message = err instanceof Error ? err.message : String(err);
    if (process.env.ENCLAVE_DEBUG && err instanceof Error && err.stack) message = err.stack;
  }
  if (json) {
    process.stderr.write(`${stringifyForTerminal({ error: detail === undefined ? { code, message } : { code, message, detail } })}\n`);
  } else {
    process.stderr.write(`error[${code}]: ${escapeMessage(message)}${detail === undefined ? '' : `\n  enclave says: ${escapeText(detail)}`}\n`);
  }
  process.exitCode = exit;
}
