/**
 * The one error model (issue 10 item 5): a table-driven walk of every code in core/error-codes.ts,
 * the classes of core/errors.ts, and the names kept from before the table.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ATTESTATION_ERROR_CODES,
  ATTESTATION_ERROR_MESSAGES,
  AttestationError,
  DISCARDING_CODES,
  ENCLAVE_CODES,
  ERROR_CODES,
  ERROR_MESSAGES,
  ERROR_TABLE,
  EnclaveError,
  UsageError,
  WasmFormatError,
  errorFlags,
  isAttestationError,
  isErrorCode,
  listSections,
  type ErrorClassName,
  type ErrorCode,
} from '../core/index.js';
import * as attest from '../attest/index.js';
import * as runtime from '../runtime/index.js';
import { EXIT, handleError } from '../host/cli/handle-error.js';

// The codes of the two tables before the one table (runtime/errors.ts, attest/errors.ts at 823eaad):
// none may disappear or change (callers match on them).
const RUNTIME_CODES_BEFORE = [
  'bad_request', 'unknown_op', 'denied', 'state', 'limit', 'internal', 'invalid_module', 'unsupported_abi',
  'capability_denied', 'memory_limit', 'invalid_contract', 'untrusted_module', 'rollback', 'invalid_args',
  'invalid_options', 'too_large', 'bad_reply', 'trap', 'stack_overflow', 'fuel_exhausted', 'closed', 'timeout',
  'overloaded',
];
const ATTESTATION_CODES_BEFORE = [
  'invalid_module', 'invalid_contract', 'malformed_signature', 'duplicate_signature', 'untrusted_module', 'rollback',
  'invalid_key', 'key_unavailable', 'key_exists', 'insecure_key_file', 'invalid_nonce', 'invalid_report_data',
  'invalid_evidence_request', 'sealing_unavailable', 'platform_unavailable', 'invalid_policy', 'malformed',
  'bad_signature', 'nonce_mismatch', 'expired', 'not_yet_valid', 'platform_not_allowed', 'measurement_not_allowed',
  'signer_not_allowed', 'svn_too_low', 'debug_not_allowed', 'report_data_mismatch',
];
const SHARED_BEFORE = ['invalid_module', 'invalid_contract', 'untrusted_module', 'rollback'];

const CLASSES: Record<ErrorClassName, new (...args: never[]) => EnclaveError> = { EnclaveError, AttestationError, UsageError };
const classNames = Object.keys(CLASSES) as ErrorClassName[];

/** Builds `code` through the constructor of its own class. */
function build(code: ErrorCode, message?: string, options?: { detail?: string; cause?: unknown }): EnclaveError {
  const cls = ERROR_TABLE[code].class;
  if (cls === 'UsageError') return new UsageError(message, options);
  if (cls === 'AttestationError') return new AttestationError(code as never, message, options);
  return new EnclaveError(code, message, options);
}

/** The declared flags of a code, all present. */
function declared(code: ErrorCode) {
  const spec: { fromEnclave?: boolean; discards?: boolean; retryable?: boolean; usage?: boolean } = ERROR_TABLE[code];
  return {
    fromEnclave: spec.fromEnclave === true,
    discards: spec.discards === true,
    retryable: spec.retryable === true,
    usage: spec.usage === true,
  };
}

describe('the one table', () => {
  it('keeps every code of both tables from before, and declares each once', () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    for (const code of [...RUNTIME_CODES_BEFORE, ...ATTESTATION_CODES_BEFORE]) expect(isErrorCode(code), code).toBe(true);
    expect(ERROR_CODES.length).toBe(new Set([...RUNTIME_CODES_BEFORE, ...ATTESTATION_CODES_BEFORE]).size + 15); // + usage, build_failed, and the supervisor's unauthorized, rate_limited, quota_exceeded, unavailable, invalid_access_policy; issue 13's sealing_key_revoked, sealing_key_unknown, counter_limit, unseal_failed, not_found, conflict, decrypt_failed, store_corrupt
    expect(ERROR_CODES).toContain('usage');
  });

  it('gives each code exactly one class: no code is carried by two classes', () => {
    for (const code of ERROR_CODES) {
      const owners = classNames.filter((name) => ERROR_TABLE[code].class === name);
      expect(owners, code).toHaveLength(1);
      // Built through either constructor that takes a code, the code comes out as its own class.
      for (const Ctor of [EnclaveError, AttestationError] as unknown as (new (code: ErrorCode) => EnclaveError)[]) {
        const err = new Ctor(code);
        expect(err.name, `${code} built as ${Ctor.name}`).toBe(ERROR_TABLE[code].class);
        expect(err.code).toBe(code);
      }
    }
    const attestationOwned = ERROR_CODES.filter((c) => ERROR_TABLE[c].class === 'AttestationError');
    expect([...ATTESTATION_ERROR_CODES].sort()).toEqual([...attestationOwned].sort());
  });

  it('merges the four codes both tables declared into one entry of one class, with one message', () => {
    for (const code of SHARED_BEFORE as ErrorCode[]) {
      const viaRoot = new EnclaveError(code);
      const viaAttest = new AttestationError(code as never);
      expect(viaRoot).toBeInstanceOf(AttestationError);
      expect(viaRoot.name).toBe(viaAttest.name);
      expect(viaRoot.message).toBe(viaAttest.message);
      expect(ERROR_MESSAGES[code]).toBe(ATTESTATION_ERROR_MESSAGES[code as never]);
    }
  });

  it('flags the same codes the scattered tables did, and the CLI exit-2 codes as usage', () => {
    const flagged = (flag: 'fromEnclave' | 'discards' | 'retryable' | 'usage') => ERROR_CODES.filter((c) => errorFlags(c)[flag]).sort();
    // Issue 13 added the sealed-storage codes; `rollback` is both a module verdict and an enclave's code.
    expect(flagged('fromEnclave')).toEqual(['bad_request', 'conflict', 'decrypt_failed', 'denied', 'internal', 'limit', 'not_found', 'rollback', 'state', 'unknown_op', 'unseal_failed']);
    expect(flagged('discards')).toEqual(['bad_reply', 'fuel_exhausted', 'stack_overflow', 'timeout', 'trap']);
    expect(flagged('retryable')).toEqual(['overloaded', 'rate_limited', 'unavailable']);
    // host/cli/handle-error.ts exited 2 for exactly these before (invalid_options, invalid_policy, invalid_nonce).
    expect(flagged('usage')).toEqual(['invalid_access_policy', 'invalid_nonce', 'invalid_options', 'invalid_policy', 'usage']);
    expect([...ENCLAVE_CODES].sort()).toEqual(flagged('fromEnclave'));
    expect([...DISCARDING_CODES].sort()).toEqual(flagged('discards'));
    expect(() => errorFlags('toString' as ErrorCode)).toThrow(TypeError);
  });
});

describe.each(ERROR_CODES.map((code) => [code] as const))('%s', (code) => {
  const cls = ERROR_TABLE[code].class;

  it('has a message that says what happened and then what to do', () => {
    const message = ERROR_TABLE[code].message;
    expect(message.length).toBeGreaterThan(20);
    // "What happened: what to do." One sentence, capitalised, the action after the last colon.
    expect(message).toMatch(/^[A-Z]/);
    expect(message).toMatch(/\.$/);
    const action = message.slice(message.lastIndexOf(': ') + 2);
    expect(message.lastIndexOf(': '), 'no ": <what to do>"').toBeGreaterThan(10);
    expect(action.length).toBeGreaterThan(8);
    expect(action).toMatch(/^[a-z`]/);
  });

  it('builds as its class, with its fixed name, its code and its default message', () => {
    const err = build(code);
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(EnclaveError);
    expect(err).toBeInstanceOf(CLASSES[cls]);
    for (const other of classNames) if (other !== cls && other !== 'EnclaveError') expect(err).not.toBeInstanceOf(CLASSES[other]);
    expect(err.name).toBe(cls);
    expect(err.code).toBe(code);
    expect(err.message).toBe(ERROR_TABLE[code].message);
    expect(err.message).toBe(ERROR_MESSAGES[code]);
    expect(err.detail).toBeUndefined();
    expect(err.flags).toEqual(declared(code));
    expect(Object.keys(err)).not.toContain('flags');
    expect(String(err)).toBe(`${cls}: ${err.message}`);
    expect(err.stack).toMatch(new RegExp(`^${cls}: `));
  });

  it('survives a thread hop: toJSON/fromJSON give the same class, code, message, detail and flags', () => {
    const cause = new Error('underneath');
    for (const err of [build(code), build(code, 'A message of its own: do this.', { detail: 'said by the enclave', cause })]) {
      const json = JSON.parse(JSON.stringify(err));
      expect(json).toEqual(err.toJSON());
      expect(Object.keys(json).sort()).toEqual(err.detail === undefined ? ['code', 'message', 'name'] : ['code', 'detail', 'message', 'name']);
      expect(JSON.stringify(json)).not.toContain('underneath'); // the cause stays on this side
      for (const back of [EnclaveError.fromJSON(json), CLASSES[cls] === EnclaveError ? EnclaveError.fromJSON(json) : (CLASSES[cls] as typeof EnclaveError).fromJSON(json)]) {
        expect(back).toBeInstanceOf(CLASSES[cls]);
        expect(back.name).toBe(cls);
        expect(back.code).toBe(code);
        expect(back.message).toBe(err.message);
        expect(back.detail).toBe(err.detail);
        expect(back.flags).toEqual(declared(code));
      }
    }
  });
});

describe('EnclaveError', () => {
  it('keeps the detail apart from the message', () => {
    const err = new EnclaveError('denied', undefined, { detail: 'policy says no' });
    expect(err.message).not.toContain('policy says no');
    expect(err.toJSON()).toEqual({ name: 'EnclaveError', code: 'denied', message: ERROR_MESSAGES.denied, detail: 'policy says no' });
  });

  it('keeps the cause', () => {
    const cause = new Error('why');
    expect(new EnclaveError('trap', undefined, { cause }).cause).toBe(cause);
    expect(new EnclaveError('rollback', undefined, { cause }).cause).toBe(cause);
    expect('cause' in new EnclaveError('trap')).toBe(false);
  });

  it('rebuilds an unknown or missing code as internal, and ignores fields of the wrong type', () => {
    expect(EnclaveError.fromJSON({ code: 'pwned', message: 'x' }).code).toBe('internal');
    expect(EnclaveError.fromJSON({}).code).toBe('internal');
    expect(EnclaveError.fromJSON({}).message).toBe(ERROR_MESSAGES.internal);
    expect(EnclaveError.fromJSON({ code: '__proto__' }).code).toBe('internal');
    const odd = EnclaveError.fromJSON({ code: 'denied', message: 42, detail: { x: 1 }, name: 'AttestationError' });
    expect([odd.name, odd.message, odd.detail]).toEqual(['EnclaveError', ERROR_MESSAGES.denied, undefined]);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode('__proto__')).toBe(false);
  });

  it('refuses a code that is not in the table (a programming mistake)', () => {
    expect(() => new EnclaveError('pwned' as ErrorCode)).toThrow(TypeError);
    expect(() => new AttestationError('toString' as never)).toThrow(TypeError);
  });

  it('builds a code given to the wrong class as its own class', () => {
    const err = new (AttestationError as unknown as new (code: string) => EnclaveError)('overloaded');
    expect(err.name).toBe('EnclaveError');
    expect(err).not.toBeInstanceOf(AttestationError);
    expect(new EnclaveError('usage')).toBeInstanceOf(UsageError);
  });

  it('answers instanceof from its mark, so a plain object or a foreign error is not one', () => {
    expect({ code: 'trap', message: 'x', name: 'EnclaveError' }).not.toBeInstanceOf(EnclaveError);
    expect(new Error('x')).not.toBeInstanceOf(EnclaveError);
    expect(null).not.toBeInstanceOf(EnclaveError);
    const hostile = new Proxy({}, { get: () => { throw new Error('trap'); } });
    expect(hostile instanceof EnclaveError).toBe(false);
    expect(isAttestationError(new EnclaveError('trap'))).toBe(false);
    expect(isAttestationError(new EnclaveError('rollback'), 'rollback')).toBe(true);
  });
});

describe('WasmFormatError', () => {
  it('is the invalid_module of the framing reader: an AttestationError and an EnclaveError', () => {
    let err: unknown;
    try {
      listSections(Uint8Array.of(1, 2, 3));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WasmFormatError);
    expect(err).toBeInstanceOf(AttestationError);
    expect(err).toBeInstanceOf(EnclaveError);
    const e = err as WasmFormatError;
    expect([e.name, e.code]).toEqual(['WasmFormatError', 'invalid_module']);
    expect(new WasmFormatError().message).toBe(ERROR_MESSAGES.invalid_module);
    const back = EnclaveError.fromJSON(JSON.parse(JSON.stringify(e)));
    expect(back).toBeInstanceOf(WasmFormatError);
    expect([back.name, back.code, back.message]).toEqual([e.name, e.code, e.message]);
    // Another class's invalid_module is not one.
    expect(new AttestationError('invalid_module')).not.toBeInstanceOf(WasmFormatError);
  });
});

describe('UsageError', () => {
  it('is the CLI usage code, flagged usage', () => {
    const err = new UsageError('--min-svn must be a whole number ≥ 0.');
    expect([err.name, err.code, err.flags.usage]).toEqual(['UsageError', 'usage', true]);
    expect(err).toBeInstanceOf(EnclaveError);
    expect(err).not.toBeInstanceOf(AttestationError);
  });
});

describe('two copies of the package', () => {
  // A second, separately loaded copy of core/errors (as when two versions of the package sit in one
  // dependency tree): the compiled files of dist/, copied to a directory of their own.
  let dir: string;
  let copy: typeof import('../core/errors.js');
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'enclave-errors-copy-'));
    const dist = fileURLToPath(new URL('../dist/core/', import.meta.url));
    for (const file of ['errors.js', 'error-codes.js']) {
      // Without the source map comment: the map's relative paths do not hold in the copy's directory.
      writeFileSync(join(dir, file), readFileSync(join(dist, file), 'utf8').replace(/^\/\/# sourceMappingURL=.*$/m, ''));
    }
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    copy = await import(pathToFileURL(join(dir, 'errors.js')).href);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is another module, with classes of its own', () => {
    expect(copy.EnclaveError).not.toBe(EnclaveError);
    expect(copy.AttestationError).not.toBe(AttestationError);
  });

  it.each(ERROR_CODES.map((code) => [code] as const))('%s: instanceof holds both ways, for its class only', (code) => {
    const cls = ERROR_TABLE[code].class;
    const ours = build(code);
    const theirs: EnclaveError = cls === 'UsageError' ? new copy.UsageError() : new copy.EnclaveError(code);
    expect(theirs.name).toBe(cls);
    for (const [err, Root, Att, Usage] of [
      [theirs, EnclaveError, AttestationError, UsageError],
      [ours, copy.EnclaveError, copy.AttestationError, copy.UsageError],
    ] as const) {
      expect(err).toBeInstanceOf(Root);
      expect(err instanceof Att).toBe(cls === 'AttestationError');
      expect(err instanceof Usage).toBe(cls === 'UsageError');
    }
    expect(copy.isAttestationError(ours)).toBe(cls === 'AttestationError');
    expect(isAttestationError(theirs)).toBe(cls === 'AttestationError');
    // And a hop from one copy to the other keeps the class.
    const back = EnclaveError.fromJSON(JSON.parse(JSON.stringify(theirs)));
    expect(back).toBeInstanceOf(CLASSES[cls]);
    expect(back).toBeInstanceOf(copy.EnclaveError);
  });

  it('a WasmFormatError of one copy is one in the other', () => {
    expect(new copy.WasmFormatError('x')).toBeInstanceOf(WasmFormatError);
    expect(new WasmFormatError('x')).toBeInstanceOf(copy.WasmFormatError);
  });
});

describe('the layers re-export the one model', () => {
  it('runtime/, attest/ and the package root name the same classes', () => {
    expect(runtime.EnclaveError).toBe(EnclaveError);
    expect(attest.AttestationError).toBe(AttestationError);
    expect(attest.WasmFormatError).toBe(WasmFormatError);
    expect(runtime.ERROR_MESSAGES).toBe(ERROR_MESSAGES);
    expect(runtime.ENCLAVE_CODES).toBe(ENCLAVE_CODES);
    expect(attest.ATTESTATION_ERROR_CODES).toBe(ATTESTATION_ERROR_CODES);
    expect(attest.ATTESTATION_ERROR_MESSAGES).toBe(ATTESTATION_ERROR_MESSAGES);
    expect(new attest.AttestationError('rollback')).toBeInstanceOf(runtime.EnclaveError);
  });
});

describe('the CLI picks its exit code from the flags (host/cli/handle-error.ts)', () => {
  function run(err: unknown, json = false): { exit: number | string | undefined; out: string } {
    const write = process.stderr.write;
    const before = process.exitCode;
    let out = '';
    process.stderr.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stderr.write;
    try {
      handleError(err, json);
      return { exit: process.exitCode, out };
    } finally {
      process.stderr.write = write;
      process.exitCode = before;
    }
  }

  it.each(ERROR_CODES.map((code) => [code] as const))('%s', (code) => {
    const { exit, out } = run(build(code, undefined, { detail: 'd' }));
    expect(exit).toBe(errorFlags(code).usage ? EXIT.usage : EXIT.failed);
    expect(out.startsWith(`error[${code}]: ${ERROR_TABLE[code].message}\n`)).toBe(true);
    expect(JSON.parse(run(build(code), true).out)).toEqual({ error: { code, message: ERROR_TABLE[code].message } });
  });

  it('prints anything else as internal, exit 1', () => {
    expect(run(new Error('boom'))).toEqual({ exit: EXIT.failed, out: 'error[internal]: boom\n' });
  });
});
