/**
 * Spans around the host's boundary crossings, through `@opentelemetry/api`: a no-op unless the
 * service installs an OpenTelemetry SDK (a registered TracerProvider).
 *
 * ```
 *  host.call ─► enclave.call   { enclave.name, enclave.op }            error: status ERROR, enclave.error_code
 *  host.start ─► enclave.start { enclave.name }                         (also attest, upgrade, integrity)
 * ```
 *
 * What a span never carries: arguments, replies, error messages (an enclave writes their detail;
 * `recordException` would copy it), session ids, caller ids, and op or enclave names the host
 * does not know (they are caller input: `(unknown)` instead).
 */
import { ProxyTracerProvider, SpanKind, SpanStatusCode, context, trace, type Span, type Tracer } from '@opentelemetry/api';
import { EnclaveError, RUNTIME_VERSION } from '../../runtime/index.js';

/** The spans the host makes, by what they wrap. */
const SPAN_NAMES = Object.freeze({
  call: 'enclave.call',
  start: 'enclave.start',
  attest: 'enclave.attest',
  upgrade: 'enclave.upgrade',
  integrity: 'enclave.integrity',
} as const);

/** A lifecycle span of {@link SPAN_NAMES} (every one but the call's). */
export type LifecycleSpan = Exclude<keyof typeof SPAN_NAMES, 'call'>;

/** The attributes the host sets on its spans. */
const SPAN_ATTRIBUTES = Object.freeze({
  /** The enclave's name in the host. */
  enclave: 'enclave.name',
  /** The op, when the contract declares it. */
  op: 'enclave.op',
  /** The stable error code a failed span ended with. */
  code: 'enclave.error_code',
} as const);

/** The delegate of a proxy provider nobody registered a real provider behind (the API's no-op). */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * Whether a real TracerProvider is registered globally (an SDK installed), so spans record.
 * Costs a global lookup (~30 ns): the observer re-reads it once a second, not per call.
 * @example
 * if (tracerInstalled()) console.log('spans are exported');
 */
export function tracerInstalled(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NOOP_PROVIDER;
}

/** The stable code of what a call rejected with: never its message. */
export function codeOf(error: unknown): string {
  return error instanceof EnclaveError ? error.code : 'internal';
}

function fail(span: Span, error: unknown): void {
  const code = codeOf(error);
  span.setAttribute(SPAN_ATTRIBUTES.code, code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: code });
}

/**
 * Makes the host's spans on the tracer `enclave` (version: the runtime's).
 * @example
 * const tracing = new HostTracer();
 * await tracing.call('signer', 'sign', () => handle.call('sign', args));
 */
export class HostTracer {
  readonly #tracer: Tracer = trace.getTracer('enclave', RUNTIME_VERSION);

  /**
   * Runs `fn` inside an `enclave.call` span. `enclave` and `op` must already be names the host
   * knows (the observer maps others to `(unknown)`).
   * @throws what `fn` throws, unchanged.
   */
  call<T>(enclave: string, op: string, fn: () => Promise<T>): Promise<T> {
    const span = this.#tracer.startSpan(SPAN_NAMES.call, {
      kind: SpanKind.INTERNAL,
      attributes: { [SPAN_ATTRIBUTES.enclave]: enclave, [SPAN_ATTRIBUTES.op]: op },
    });
    // A provider whose sampler dropped this span: nothing to wait for.
    if (!span.isRecording()) {
      span.end();
      return fn();
    }
    return settle(span, fn);
  }

  /**
   * Runs `fn` inside a lifecycle span (`enclave.start`, ...), made the active span so spans `fn`
   * makes (a self-check call's) are its children.
   * @throws what `fn` throws, unchanged.
   */
  lifecycle<T>(what: LifecycleSpan, enclave: string, fn: () => Promise<T>): Promise<T> {
    const span = this.#tracer.startSpan(SPAN_NAMES[what], { kind: SpanKind.INTERNAL, attributes: { [SPAN_ATTRIBUTES.enclave]: enclave } });
    return context.with(trace.setSpan(context.active(), span), () => settle(span, fn));
  }
}

async function settle<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    fail(span, error);
    throw error;
  } finally {
    span.end();
  }
}
