/**
 * Reading what the CLI is given on stdin or in a file, bounded: stdin is hostile input like any
 * other (an endless stream, a line with no end, bytes that are not UTF-8, a FIFO or a device named
 * as a file). Whatever comes in, the CLI holds at most {@link MAX_INPUT_BYTES} of it at a time.
 */
import { EnclaveError, readBoundedFile, UsageError } from '../../core/index.js';

/**
 * The most bytes of one input the CLI reads: a JSON document of arguments (`-` or `--input-file`)
 * or one `--ndjson` line. Four times the host's default request limit (2 MiB of msgpack), room
 * for the same data as JSON with bytes in base64.
 */
export const MAX_INPUT_BYTES = 8 * 1024 * 1024;

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes UTF-8 (a leading BOM dropped), or fails as bad usage naming what it was. */
export function utf8(bytes: Uint8Array, what: string): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new UsageError(`${what} is not UTF-8 text.`);
  }
}

function tooLarge(what: string, max: number): EnclaveError {
  return new EnclaveError('too_large', `${what} is longer than ${max} bytes, the most the CLI reads: pass smaller arguments.`);
}

/**
 * Reads a whole stream (stdin), refusing it with `too_large` as soon as it passes `max` bytes.
 * @throws {EnclaveError} `too_large`.
 */
export async function readStream(input: AsyncIterable<Uint8Array | string>, what: string, max = MAX_INPUT_BYTES): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    size += buf.length;
    if (size > max) throw tooLarge(what, max);
    parts.push(buf);
  }
  return Buffer.concat(parts, size);
}

/**
 * Reads a file named on the command line: a regular file of at most `max` bytes (a FIFO would
 * wait forever, `/dev/zero` would never end), read by {@link readBoundedFile}.
 * @throws {UsageError} when it cannot be read or is not a regular file. {@link EnclaveError} `too_large`.
 */
export async function readInputFile(path: string, what: string, max = MAX_INPUT_BYTES): Promise<Buffer> {
  const read = await readBoundedFile(path, max);
  switch (read.kind) {
    case 'ok':
      return Buffer.from(read.bytes.buffer, read.bytes.byteOffset, read.bytes.length);
    case 'not_regular':
      throw new UsageError(`Cannot read ${what} ${path}: not a regular file.`);
    case 'too_large':
      throw tooLarge(`${what} ${path}`, max);
    case 'errno':
      throw new UsageError(`Cannot read ${what} ${path}: ${read.code}.`);
  }
}

/** One line of a stream: its bytes (without the newline), or only the fact that it was too long. */
export type Line = { readonly number: number; readonly bytes: Buffer } | { readonly number: number; readonly tooLong: true };

/**
 * Splits a stream into lines (`\n`; a `\r` before it is left to the caller, JSON takes it as
 * space), holding at most `max` bytes of a line: a longer line is dropped as it streams in and
 * reported once, at its end, as `tooLong`. Lines are numbered from 1; a last line without a
 * newline counts.
 */
export async function* lines(input: AsyncIterable<Uint8Array | string>, max = MAX_INPUT_BYTES): AsyncGenerator<Line> {
  let parts: Buffer[] = [];
  let size = 0;
  let overflow = false;
  let number = 0;
  for await (const chunk of input) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      const end = nl === -1 ? buf.length : nl;
      if (!overflow) {
        if (size + (end - start) > max) {
          overflow = true;
          parts = [];
          size = 0;
        } else if (end > start) {
          parts.push(buf.subarray(start, end));
          size += end - start;
        }
      }
      if (nl === -1) break;
      number++;
      yield overflow ? { number, tooLong: true } : { number, bytes: Buffer.concat(parts, size) };
      parts = [];
      size = 0;
      overflow = false;
      start = nl + 1;
    }
  }
  if (overflow || size > 0) {
    number++;
    yield overflow ? { number, tooLong: true } : { number, bytes: Buffer.concat(parts, size) };
  }
}
