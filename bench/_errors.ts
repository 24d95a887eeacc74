/**
 * The benchmark runner's own errors and their printer: bench/ is not part of the product, so it
 * shares nothing with the CLI's error handling (host/cli/handle-error.ts) and imports nothing of
 * host/ but its public entry.
 *
 * Exit codes as the CLI's: 0 done, 1 a regression or a failed suite (or any other error), 2 bad usage.
 */
import { CommanderError } from 'commander';

/** Exit codes of `npm run bench`. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/**
 * Bad usage of the runner (an unknown suite, a bad option, a file that is not a results document):
 * exit code 2.
 * @example
 * throw new BenchUsageError('--max-time: expected a positive number of seconds');
 */
export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
  readonly code = 'usage';
}

// C0, DEL, C1, format characters (bidi overrides...), line and paragraph separators, lone surrogates:
// a message may quote a module's text (an error from the runtime), which must not drive the terminal.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

function escapeControls(text: string): string {
  return text.replace(UNSAFE, (ch) => `\\u{${ch.codePointAt(0)!.toString(16)}}`);
}

/**
 * Prints `error[<code>]: <message>` on stderr and returns the exit code: 2 for bad usage, 1
 * otherwise. An error with a string `code` (the runtime's and the platform's) prints that code;
 * anything else prints as `internal`, with its stack when ENCLAVE_DEBUG is set. Commander has
 * already printed its own usage errors and help.
 * @example
 * process.exitCode = printBenchError(err);
 */
export function printBenchError(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'internal';
  let message = err instanceof Error ? err.message : String(err);
  if (process.env.ENCLAVE_DEBUG && err instanceof Error && err.stack) message = err.stack;
  // Line by line: a stack keeps its lines, and nothing else in a line can move the cursor.
  process.stderr.write(`error[${escapeControls(code)}]: ${message.split('\n').map(escapeControls).join('\n')}\n`);
  return err instanceof BenchUsageError ? EXIT.usage : EXIT.failed;
}
