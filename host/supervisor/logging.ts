/**
 * The host's structured logs, through the service's pino logger (default: silent).
 *
 * | message            | level              | fields |
 * |--------------------|--------------------|--------|
 * | `enclave call`     | debug              | enclave, op, ok, code; with logPayloads: args, reply, error (message) |
 * | `enclave log`      | the enclave's      | enclave, line (the enclave's text, in a field) |
 * | `enclave state`    | info (failed: error) | enclave, state |
 * | `enclave started`  | info               | enclave, ms |
 * | `enclave restart`  | warn               | enclave, reason, error? (Node's code of a worker's death) |
 * | `enclave integrity`| info (mismatch: error) | enclave, result |
 *
 * What is never logged: arguments, replies and error messages unless `logPayloads` is on (an
 * error's message can carry the enclave's detail, which can carry the arguments); with it on, each
 * is logged in a bounded form ({@link loggedPayload}: binary as `{ bin, base64 }` of its first 64
 * bytes, about 4 KiB of text at most, so a 1 MiB argument does not make a megabyte log line); caller ids;
 * session ids; op and enclave names the host does not know (caller input: `(unknown)`). A line
 * an enclave logs is untrusted text: it goes in the `line` field, JSON-escaped by pino, never in
 * the message key, where a forged "msg" could pass for the host's own.
 */
import type { Logger } from 'pino';
import { codeOf } from './tracing.js';

/** The messages the host logs (the `msg` key), each a constant. */
export const LOG_MESSAGES = Object.freeze({
  call: 'enclave call',
  enclaveLog: 'enclave log',
  state: 'enclave state',
  started: 'enclave started',
  restart: 'enclave restart',
  integrity: 'enclave integrity',
} as const);

/** Longest enclave log line kept, characters (the runtime's `log` import already bounds it to 1024 bytes). */
const MAX_LINE = 4096;

/** About the most characters of JSON one logged payload (args, reply) takes. */
export const MAX_LOGGED_PAYLOAD = 4096;
/** Bytes of a binary value shown (as base64) in a logged payload; its length is always given. */
const MAX_BINARY_SHOWN = 64;
/** Nesting shown in a logged payload; deeper values are `(deeper)` (a cycle ends here too). */
const MAX_DEPTH = 8;
/** Longest object key shown, characters. */
const MAX_KEY = 128;
/** Longest error message logged, characters. */
const MAX_ERROR_MESSAGE = 1024;

/** What is left of a payload's budget while it is walked. */
interface Budget {
  left: number;
}

/**
 * A payload (a call's args or reply) as it is logged with logPayloads: at most about
 * {@link MAX_LOGGED_PAYLOAD} characters of JSON whatever its size; binary values (any typed array
 * or DataView, an ArrayBuffer) as `{ bin: byteLength, base64: <first 64 bytes> }`; long strings,
 * arrays and objects cut with a `…(+N …)` marker; a bigint as its decimal text with an `n`. The
 * value's own `toJSON` and getters are not trusted to behave: it is read once, here, and a value
 * that throws while read is logged as `(unreadable)`.
 * @example
 * loggedPayload(new Uint8Array(1 << 20)); // { bin: 1048576, base64: 'AAAA…' }
 */
export function loggedPayload(value: unknown): unknown {
  try {
    return walk(value, 0, { left: MAX_LOGGED_PAYLOAD });
  } catch {
    return '(unreadable)';
  }
}

function binary(bytes: Uint8Array): { bin: number; base64: string } {
  return { bin: bytes.byteLength, base64: Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, MAX_BINARY_SHOWN)).toString('base64') };
}

function cutString(text: string, budget: Budget): string {
  const room = Math.max(0, budget.left);
  if (text.length <= room) {
    budget.left -= text.length + 2;
    return text;
  }
  budget.left = 0;
  return `${text.slice(0, room)}…(+${text.length - room} chars)`;
}

function walk(value: unknown, depth: number, budget: Budget): unknown {
  switch (typeof value) {
    case 'string':
      return cutString(value, budget);
    case 'number':
    case 'boolean':
    case 'undefined':
      budget.left -= 8;
      return value;
    case 'bigint':
      return cutString(`${value}n`, budget);
    case 'object':
      break;
    default:
      // A function or a symbol: its kind only.
      budget.left -= 12;
      return `(${typeof value})`;
  }
  if (value === null) {
    budget.left -= 4;
    return null;
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    budget.left -= 40 + (MAX_BINARY_SHOWN * 4) / 3;
    return binary(value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  }
  if (depth >= MAX_DEPTH) {
    budget.left -= 10;
    return '(deeper)';
  }
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    const length = value.length;
    for (let i = 0; i < length; i++) {
      if (budget.left <= 0) {
        out.push(`…(+${length - i} items)`);
        break;
      }
      budget.left -= 1;
      out.push(walk(value[i], depth + 1, budget));
    }
    return out;
  }
  const entries: [string, unknown][] = value instanceof Map ? [...value.keys()].map((k) => [String(k), k]) : Object.keys(value).map((k) => [k, k]);
  const out: Record<string, unknown> = {};
  for (let i = 0; i < entries.length; i++) {
    if (budget.left <= 0) {
      define(out, '…', `+${entries.length - i} keys`);
      break;
    }
    const [name, key] = entries[i]!;
    const shown = name.length > MAX_KEY ? `${name.slice(0, MAX_KEY)}…` : name;
    budget.left -= shown.length + 4;
    define(out, shown, walk(value instanceof Map ? value.get(key) : (value as Record<string, unknown>)[name], depth + 1, budget));
  }
  return out;
}

/** An own, enumerable property, whatever its name (`__proto__` included: never the prototype). */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** An error's message as logged with logPayloads: bounded. */
function loggedMessage(error: unknown): string {
  let message: string;
  try {
    message = error instanceof Error ? String(error.message) : String(error);
  } catch {
    return '(unreadable)';
  }
  return message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE)}…(+${message.length - MAX_ERROR_MESSAGE} chars)` : message;
}

/** The enclave's log levels (runtime LOG_LEVELS), each a pino method. */
type EnclaveLogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * Writes the host's log lines.
 * @example
 * const log = new HostLog(pino(), false);
 * if (log.callsEnabled) log.call('signer', 'sign', args, reply, undefined);
 * log.close();
 */
export class HostLog {
  readonly logger: Logger;
  readonly #payloads: boolean;
  #callsEnabled: boolean;
  readonly #onLevel = (): void => {
    this.#callsEnabled = this.logger.isLevelEnabled('debug');
  };

  constructor(logger: Logger, logPayloads: boolean) {
    this.logger = logger;
    this.#payloads = logPayloads;
    // isLevelEnabled costs ~60-80 ns, a quarter of the host's per-call budget: cached, and
    // re-read when the level changes (pino emits level-change on the logger whose level is set).
    this.#callsEnabled = logger.isLevelEnabled('debug');
    logger.on('level-change', this.#onLevel);
  }

  /** Whether {@link HostLog.call} writes anything (the logger's level is debug or lower). */
  get callsEnabled(): boolean {
    return this.#callsEnabled;
  }

  /** A call through the host settled: `error` undefined for success. Payloads only with logPayloads. */
  call(enclave: string, op: string, args: unknown, reply: unknown, error: unknown): void {
    if (!this.#callsEnabled) return;
    const ok = error === undefined;
    if (!this.#payloads) {
      this.logger.debug({ enclave, op, ok, code: ok ? undefined : codeOf(error) }, LOG_MESSAGES.call);
    } else if (ok) {
      this.logger.debug({ enclave, op, ok, args: loggedPayload(args), reply: loggedPayload(reply) }, LOG_MESSAGES.call);
    } else {
      this.logger.debug({ enclave, op, ok, code: codeOf(error), args: loggedPayload(args), error: loggedMessage(error) }, LOG_MESSAGES.call);
    }
  }

  /** A line the enclave logged (`onLog`): untrusted text, in the `line` field. */
  enclaveLine(enclave: string, level: string, line: string): void {
    const method: EnclaveLogLevel = level === 'debug' || level === 'warn' || level === 'error' ? level : 'info';
    const text = typeof line === 'string' ? line : String(line);
    if (text.length > MAX_LINE) this.logger[method]({ enclave, line: text.slice(0, MAX_LINE), truncated: true }, LOG_MESSAGES.enclaveLog);
    else this.logger[method]({ enclave, line: text }, LOG_MESSAGES.enclaveLog);
  }

  /** A lifecycle line: `fields` are the host's own values (names it runs, codes, numbers), never payloads. */
  event(level: 'debug' | 'info' | 'warn' | 'error', message: (typeof LOG_MESSAGES)[keyof typeof LOG_MESSAGES], fields: Record<string, string | number | boolean | undefined>): void {
    this.logger[level](fields, message);
  }

  /** Stops following the logger's level. */
  close(): void {
    this.logger.off('level-change', this.#onLevel);
  }
}
