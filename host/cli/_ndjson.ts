/**
 * `enclave run <module> --ndjson`: several calls to one instance. Each stdin line is a call,
 * `{"op": "incr", "args": {"by": 2}}` (optional `"session"`, and `"id"`, a string or a number
 * echoed in the reply); each gets one stdout line, `{"ok": <reply>}` or
 * `{"error": {"code", "message", "detail"?}}`, in order, and the next line is read only then.
 * A failed call does not end the session. Blank lines are skipped. The exit code is the worst of
 * the lines': 0 when every call succeeded, 1 when one failed, 2 when a line was not a usable call.
 */
import { UsageError, EnclaveError } from '../../core/index.js';
import { formatJson, parseJsonArgs } from './_json.js';
import { lines, utf8, MAX_INPUT_BYTES } from './_stdin.js';
import { describeError, EXIT } from './handle-error.js';

/** One call read from a line. */
export interface LineCall {
  readonly op: string;
  readonly args: unknown;
  readonly session: string | undefined;
}

/** What the session does with a call: its reply, or it throws; `stats` is printed with the reply when given. */
export type Caller = (call: LineCall) => Promise<{ reply: unknown; stats?: unknown } | { error: unknown; stats?: unknown }>;

const KEYS = new Set(['op', 'args', 'session', 'id']);

/** Parses one line into a call and its id. @throws {UsageError} */
export function parseLine(text: string, number: number): { call: LineCall; id: string | number | undefined } {
  let value: unknown;
  try {
    value = parseJsonArgs(text);
  } catch (err) {
    throw new UsageError(`Line ${number}: ${(err as Error).message.replace(/^The arguments are/, 'it is')}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new UsageError(`Line ${number} is not a call: write {"op": "<name>", "args": ...}.`);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!KEYS.has(key)) throw new UsageError(`Line ${number} has an unknown key ${JSON.stringify(key).slice(0, 66)}: a call has op, args, session and id.`);
  }
  const { op, args, session, id } = record;
  if (typeof op !== 'string') throw new UsageError(`Line ${number} has no "op" string.`);
  if (session !== undefined && typeof session !== 'string') throw new UsageError(`Line ${number}: "session" must be a string.`);
  if (id !== undefined && typeof id !== 'string' && !(typeof id === 'number' && Number.isFinite(id))) {
    throw new UsageError(`Line ${number}: "id" must be a string or a number.`);
  }
  return { call: { op, args, session }, id };
}

/**
 * Writes lines, waiting while the reader is behind (a pipe that is not read holds the session,
 * not memory). `closed` turns true when the reader went away (EPIPE): the session ends quietly.
 */
function lineWriter(out: NodeJS.WritableStream): { write(text: string): Promise<void>; readonly closed: boolean; readonly failed: boolean } {
  let closed = false;
  let failed = false;
  let wake: (() => void) | undefined;
  out.on('error', (err: NodeJS.ErrnoException) => {
    closed = true;
    // A reader that went away ends the session quietly; output that could not be written (ENOSPC) failed.
    if (err.code !== 'EPIPE') failed = true;
    wake?.();
  });
  return {
    get closed() {
      return closed;
    },
    get failed() {
      return failed;
    },
    async write(text) {
      if (closed || out.write(`${text}\n`)) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
        out.once('drain', resolve);
      });
      wake = undefined;
    },
  };
}

/**
 * Serves the lines of `input` one after another, writing a reply line for each to `out`.
 * @returns the exit code of the session.
 */
export async function serveLines(input: AsyncIterable<Uint8Array | string>, out: NodeJS.WritableStream, caller: Caller, maxLine = MAX_INPUT_BYTES): Promise<number> {
  let exit: number = EXIT.ok;
  const writer = lineWriter(out);
  for await (const line of lines(input, maxLine)) {
    if (writer.closed) break;
    let id: string | number | undefined;
    let result: { reply: unknown; stats?: unknown } | { error: unknown; stats?: unknown };
    try {
      if ('tooLong' in line) {
        throw new EnclaveError('too_large', `Line ${line.number} is longer than ${maxLine} bytes, the most the CLI reads of a line: send smaller arguments.`);
      }
      const text = utf8(line.bytes, `Line ${line.number}`);
      if (text.trim() === '') continue;
      const parsed = parseLine(text, line.number);
      id = parsed.id;
      result = await caller(parsed.call);
    } catch (err) {
      result = { error: err };
    }
    const head = id === undefined ? {} : { id };
    const stats = result.stats === undefined ? {} : { stats: result.stats };
    if ('reply' in result) {
      await writer.write(formatJson({ ...head, ok: result.reply ?? null, ...stats }, false));
    } else {
      const { error, exit: code } = describeError(result.error);
      exit = Math.max(exit, code);
      await writer.write(formatJson({ ...head, error, ...stats }, false));
    }
  }
  return writer.failed ? Math.max(exit, EXIT.failed) : exit;
}
