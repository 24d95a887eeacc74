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
 * error's message can carry the enclave's detail, which can carry the arguments); caller ids;
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
      this.logger.debug({ enclave, op, ok, args, reply }, LOG_MESSAGES.call);
    } else {
      const message = error instanceof Error ? error.message : String(error);
      this.logger.debug({ enclave, op, ok, code: codeOf(error), args, error: message }, LOG_MESSAGES.call);
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
