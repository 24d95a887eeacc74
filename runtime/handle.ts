/**
 * The one interface both isolation modes implement: the in-process `Enclave` and the
 * `WorkerEnclave`. Pools and supervisors depend on nothing more. Every member has the same
 * signature in both modes; whatever may wait (a call, a session's end, closing) returns a
 * promise, which the in-process enclave resolves once its synchronous work is done.
 */
import type { ModuleIdentity } from '../attest/index.js';
import type { Contract, Limits } from './contract.js';
import type { CallOptions } from './options.js';
import type { EnclaveKeyJwk } from './platform.js';

/**
 * What an `any` shape accepts as args (docs/ABI.md §4.4): plain data only. `undefined` is an absent
 * map key, `nil` in an array, and no args at all at the top. Not expressible in TypeScript, so
 * refused at run time only (`invalid_args`): bigints outside -2^63 .. 2^64-1, class instances
 * (a TypeScript interface or class type is not assignable here: use a type alias), proxies,
 * cycles, nesting deeper than `limits.depth`.
 */
export type ArgValue =
  | null
  | undefined
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | readonly ArgValue[]
  | { readonly [key: string]: ArgValue };

/**
 * What a reply holds (docs/ABI.md §4.4, `decodeReply`): integers are numbers within ±2^53 and
 * bigints beyond, `bin` a `Uint8Array` copy, `nil` is `null` (never `undefined`).
 */
export type ReplyValue = null | boolean | number | bigint | string | Uint8Array | ReplyValue[] | { [key: string]: ReplyValue };

// The types below type `call` by a contract's ops. They are exported from this file (the
// declarations of `loadEnclave` & co. refer to them) but not from the package: a user names only
// `EnclaveHandle<Ops>`, and `Ops` as `enclave types` writes it.

/** One op's types: what `call` accepts as its args and what it resolves with (`enclave types` writes them). */
export interface OpTypes {
  readonly args: unknown;
  readonly reply: unknown;
}

/**
 * The ops of an enclave by name, each with its {@link OpTypes}: an interface or a type alias
 * (`enclave types` generates one from a contract).
 */
export type OpsTypes<Ops> = { readonly [K in keyof Ops]: OpTypes };

/** The ops of an enclave whose contract is not known to the type checker: any name, any args. */
export type AnyOps = { readonly [op: string]: { readonly args: unknown; readonly reply: unknown } };

/** `call`'s parameters after the op: the args are optional exactly when the op's args accept `undefined`. */
export type CallArgs<Op> = [Op] extends [{ readonly args: infer A }]
  ? undefined extends A
    ? [args?: A, options?: CallOptions]
    : [args: A, options?: CallOptions]
  : [args?: unknown, options?: CallOptions];

/** What `call` resolves with for an op. */
export type ReplyOf<Op> = [Op] extends [{ readonly reply: infer R }] ? R : unknown;

/** Whether `T` is a union (`true` for some member then). */
type IsUnion<T, U = T> = T extends unknown ? ([U] extends [T] ? false : true) : never;
/** `K` when it names one op; `never` for a union (whose args could be another op's). */
type OneOp<K> = true extends IsUnion<K> ? never : K;

/** The op parameter: `K` when it names one op of `Ops`, else the op names (what the error then lists). */
type OpName<Ops, K extends string> = [K] extends [keyof Ops] ? K & OneOp<K> : keyof Ops & string;
/** The parameters after the op; for a name that is no op, those of the untyped `call`. */
type OpRest<Ops, K extends string> = [K] extends [keyof Ops] ? CallArgs<Ops[K & keyof Ops]> : [args?: unknown, options?: CallOptions];
/** What the call resolves with; `never` for a name that is no op (such a call is refused by `OpName`). */
type OpReply<Ops, K extends string> = [K] extends [keyof Ops] ? ReplyOf<Ops[K & keyof Ops]> : never;

/**
 * The untyped `call`. A method (read through an indexed access), so its parameters compare
 * bivariantly: a typed handle's `call` is assignable to it (its op parameter, a union of names, is
 * a subtype of `string`), so a typed handle goes wherever an `EnclaveHandle` is taken.
 */
interface UntypedCall {
  call<T = unknown>(op: string, args?: unknown, options?: CallOptions): Promise<T>;
}

/**
 * The typed `call`: `K` is inferred from the op. Seen as the untyped `call` (above), `K` is
 * `string` (no op), so the parameters become the untyped ones and the reply `never`, assignable to
 * the untyped `Promise<T>`. Between two typed handles, `Ops` must match (`in out`: the rest
 * parameter would make the checker's own variance measure let a handle of one contract pass as one
 * of another).
 */
type TypedCall<in out Ops> = <K extends string>(op: OpName<Ops, K>, ...rest: OpRest<Ops, K>) => Promise<OpReply<Ops, K>>;

/**
 * The `call` of a handle: typed by `Ops` when it lists its ops; the untyped
 * `call<T>(op: string, args?: unknown, options?)` when `Ops` has a string index ({@link AnyOps}).
 */
export type EnclaveCall<Ops> = string extends keyof Ops ? UntypedCall['call'] : TypedCall<Ops>;

/**
 * A handle (or `Enclave`, `WorkerEnclave`) whose `call` is typed by `Ops`; the handle itself when
 * `Ops` is {@link AnyOps}. What `loadEnclave<Ops>` and `createWorkerEnclave<Ops>` return.
 */
export type WithOps<E extends EnclaveHandle, Ops> = string extends keyof Ops ? E : Omit<E, 'call'> & { call: EnclaveCall<Ops> };

/**
 * What both isolation modes offer (`loadEnclave` returns one). `Ops` types `call` (see
 * `enclave types`, which writes it from a contract); by default any op and any args are accepted
 * by the type checker and checked at run time only. A typed handle is also an `EnclaveHandle`
 * (for code that takes any handle), whose `call` is then untyped.
 * @example
 * import { loadEnclave } from 'enclave';
 * import type { KvOps } from './kv.js'; // written by `enclave types kv/build/kv.wasm --out kv.d.ts`
 * const kv = await loadEnclave<KvOps>('kv/build/kv.wasm');
 * await kv.call('put', { k: 'a', v: 'b' });
 */
export interface EnclaveHandle<Ops extends OpsTypes<Ops> = AnyOps> {
  readonly contract: Contract;
  /** SHA-256 of the module bytes without the signature section, hex. */
  readonly measurement: string;
  /** Measurement, svn and, when a trust policy admitted the module, its signer. */
  readonly identity: ModuleIdentity;
  /** The limits in force: the contract's, capped by the host policy. */
  readonly limits: Limits;
  /** True once `close()` was called. */
  readonly closed: boolean;
  /**
   * Calls an operation; rejects with an `EnclaveError` with a stable `code`. For what this call
   * used, pass `{ stats }`: it is filled in whatever else runs meanwhile.
   */
  call: EnclaveCall<Ops>;
  /**
   * Signed evidence about this enclave, bound to the relying party's nonce (8..64 bytes), issued
   * by the host's platform. Rejects, never throws: `closed`, `invalid_options` without a platform,
   * and the platform's own codes (`invalid_nonce`, `platform_unavailable`, ...).
   */
  attest(nonce: Uint8Array, options?: { enclaveKey?: EnclaveKeyJwk }): Promise<string>;
  /**
   * `per-session`: drops a session's instance and its memory now, after the calls accepted before
   * it. Resolves with whether the session existed.
   */
  endSession(session: string): Promise<boolean>;
  /** Resolves when every call (and endSession) accepted before it has settled. Never rejects. */
  drain(): Promise<void>;
  /** Releases the enclave; later calls fail with `closed`. Resolves once released. Idempotent. */
  close(): Promise<void>;
}
