import { execFileSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { SoftwareAttestationProvider } from '../attest/index.js';
import { compileEnclave, EnclaveError, loadEnclave, type Enclave } from '../host/index.js';
import { fixture, MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';
import { codeOf } from './helpers/errors.js';

describe('load-time validation', () => {
  it('loads a minimal well-formed enclave and calls it', async () => {
    const enclave = await loadEnclave(await watModule(minimalWat(), MINIMAL_CONTRACT));
    expect(await enclave.call('ping')).toBe(true);
    expect(enclave.measurement).toMatch(/^[0-9a-f]{64}$/);
  });

  const cases: [string, string, () => Promise<Uint8Array>][] = [
    ['an import outside the enclave namespace', 'invalid_module', () =>
      watModule(minimalWat({ imports: '(import "env" "foo" (func))' }), MINIMAL_CONTRACT)],
    ['a WASI import', 'invalid_module', () =>
      watModule(minimalWat({ imports: '(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))' }), MINIMAL_CONTRACT)],
    ['an unknown enclave import', 'invalid_module', () =>
      watModule(minimalWat({ imports: '(import "enclave" "exec" (func))' }), MINIMAL_CONTRACT)],
    ['a capability import with the wrong signature', 'invalid_module', () =>
      watModule(minimalWat({ imports: '(import "enclave" "random" (func (param i64)))' }), { ...MINIMAL_CONTRACT, capabilities: ['random'] })],
    ['a capability import the contract does not declare', 'capability_denied', () =>
      watModule(minimalWat({ imports: '(import "enclave" "random" (func (param i32 i32) (result i32)))' }), MINIMAL_CONTRACT)],
    ['an imported memory', 'invalid_module', () =>
      watModule(minimalWat({ imports: '(import "enclave" "memory" (memory 1))', memory: '' }), MINIMAL_CONTRACT)],
    ['a memory without a maximum', 'memory_limit', () =>
      watModule(minimalWat({ memory: '(memory (export "memory") 1)' }), MINIMAL_CONTRACT)],
    ['a memory maximum above the contract limit', 'memory_limit', () =>
      watModule(minimalWat({ memory: '(memory (export "memory") 1 4)' }), MINIMAL_CONTRACT)],
    ['a memory that is not exported', 'invalid_module', () =>
      watModule(minimalWat({ memory: '(memory 1 1)' }), MINIMAL_CONTRACT)],
    ['a missing enclave_call', 'invalid_module', () =>
      watModule(minimalWat({ exports: `(func (export "enclave_abi_version") (result i32) (i32.const 1))
        (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))` }), MINIMAL_CONTRACT)],
    ['an enclave_call with an i64 result', 'invalid_module', () =>
      watModule(minimalWat({ exports: `(func (export "enclave_abi_version") (result i32) (i32.const 1))
        (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
        (func (export "enclave_call") (param i32 i32) (result i64) (i64.const 0))` }), MINIMAL_CONTRACT)],
    ['an ABI version this runtime does not speak', 'unsupported_abi', () =>
      watModule(minimalWat({ exports: `(func (export "enclave_abi_version") (result i32) (i32.const 2))
        (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
        (func (export "enclave_call") (param i32 i32) (result i32) (i32.const 0x100))` }), MINIMAL_CONTRACT)],
    ['no contract section', 'invalid_contract', () => watModule(minimalWat())],
    ['a contract that is not JSON', 'invalid_contract', () => watModule(minimalWat(), new TextEncoder().encode('{nope'))],
    ['a contract with an unknown field', 'invalid_contract', () => watModule(minimalWat(), { ...MINIMAL_CONTRACT, root: true })],
    ['a contract op requiring an unknown op', 'invalid_contract', () =>
      watModule(minimalWat(), { ...MINIMAL_CONTRACT, ops: { ping: { requires: ['ghost'] } } })],
    ['a start function that traps', 'trap', () =>
      watModule(minimalWat({ body: '(func $s unreachable) (start $s)' }), MINIMAL_CONTRACT)],
    ['bytes that are not wasm', 'invalid_module', async () => new TextEncoder().encode('#!/bin/sh\necho hi\n')],
    ['a truncated module', 'invalid_module', async () => (await watModule(minimalWat(), MINIMAL_CONTRACT)).subarray(0, 40)],
  ];
  for (const [what, code, make] of cases) {
    it(`refuses ${what} with ${code}`, async () => {
      expect(await codeOf(make().then((bytes) => loadEnclave(bytes)))).toBe(code);
    });
  }

  it('names the offending import in the message', async () => {
    const bytes = await watModule(
      minimalWat({ imports: '(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))' }),
      MINIMAL_CONTRACT,
    );
    await expect(loadEnclave(bytes)).rejects.toThrow(/"wasi_snapshot_preview1"\."fd_write"/);
  });

  it('a module path that is not a regular file is invalid_module, not a hang (/dev/zero, a FIFO)', async () => {
    expect(await codeOf(loadEnclave('/dev/zero'))).toBe('invalid_module');
    const fifo = path.join(await mkdtemp(path.join(tmpdir(), 'enclave-fifo-')), 'module.wasm');
    execFileSync('mkfifo', [fifo]);
    expect(await codeOf(loadEnclave(fifo))).toBe('invalid_module');
  });

  it('an import named like an Object.prototype member is invalid_module, not a TypeError', async () => {
    for (const name of ['toString', '__proto__', 'constructor']) {
      const bytes = await watModule(minimalWat({ imports: `(import "enclave" "${name}" (func))` }), MINIMAL_CONTRACT);
      expect(await codeOf(loadEnclave(bytes)), name).toBe('invalid_module');
    }
  });

  it('names from a hostile module reach messages quoted and cut short', async () => {
    const name = 'x\\n[fake log line] '.repeat(500);
    const bytes = await watModule(minimalWat({ imports: `(import "env" "${name}" (func))` }), MINIMAL_CONTRACT);
    const err = await loadEnclave(bytes).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(EnclaveError);
    expect((err as EnclaveError).message.length).toBeLessThan(300);
    expect((err as EnclaveError).message).not.toContain('\n');
  });

  it('refuses a declared capability the host does not grant, and accepts it when granted', async () => {
    const bytes = await watModule(
      minimalWat({ imports: '(import "enclave" "random" (func (param i32 i32) (result i32)))' }),
      { ...MINIMAL_CONTRACT, capabilities: ['random'] },
    );
    expect(await codeOf(loadEnclave(bytes))).toBe('capability_denied');
    const enclave = await loadEnclave(bytes, { capabilities: ['random'] });
    expect(await enclave.call('ping')).toBe(true);
  });

  it('lets the host policy lower the memory limit below the contract', async () => {
    const bytes = await watModule(minimalWat({ memory: '(memory (export "memory") 1 2)' }), {
      ...MINIMAL_CONTRACT,
      limits: { ...MINIMAL_CONTRACT.limits, memoryPages: 2 },
    });
    await expect(loadEnclave(bytes)).resolves.toBeDefined();
    expect(await codeOf(loadEnclave(bytes, { policy: { memoryPages: 1 } }))).toBe('memory_limit');
  });

  it('refuses bad options up front', async () => {
    const bytes = await watModule(minimalWat(), MINIMAL_CONTRACT);
    expect(await codeOf(loadEnclave(bytes, { capabilities: ['root' as never] }))).toBe('invalid_options');
    expect(await codeOf(loadEnclave(bytes, { policy: { depth: -1 } }))).toBe('invalid_options');
  });

  it('refuses malformed capabilities and policy with invalid_options, never a TypeError', async () => {
    const mod = await compileEnclave(await watModule(minimalWat(), MINIMAL_CONTRACT));
    const bad: unknown[] = [
      { capabilities: 7 },
      { capabilities: 'random' },
      { capabilities: [Object.create(null)] },
      { policy: 'fuel' },
      { policy: [1] },
      { policy: { toString: 5 } },
    ];
    for (const options of bad) {
      let error: unknown;
      try {
        mod.create(options as never);
      } catch (err) {
        error = err;
      }
      expect(error, JSON.stringify(options)).toBeInstanceOf(EnclaveError);
      expect((error as EnclaveError).code).toBe('invalid_options');
    }
  });

  it('compiles once and creates enclaves with separate memories', async () => {
    const mod = await compileEnclave(await fixture('hostile'));
    const a = mod.create();
    const b = mod.create();
    await a.call('arm_alloc_oob');
    // a's next allocation is poisoned; b's is not.
    expect(await b.call('ok')).toBe('fine');
    expect(await codeOf(a.call('ok'))).toBe('bad_reply');
  });

  it('copies the bytes it was given, so later changes to them change nothing', async () => {
    const bytes = await watModule(minimalWat(), MINIMAL_CONTRACT);
    const mod = await compileEnclave(bytes);
    const measurement = mod.measurement;
    bytes.fill(0);
    expect(mod.measurement).toBe(measurement);
    expect(await mod.create().call('ping')).toBe(true);
  });
});

describe('hostile enclave at call time', () => {
  let enclave: Enclave;
  beforeAll(async () => {
    enclave = await loadEnclave(await fixture('hostile'));
  });

  const cases: [op: string, code: string][] = [
    ['ptr_oob', 'bad_reply'],
    ['huge_len', 'too_large'],
    ['span_oob', 'bad_reply'],
    ['desc_oob', 'bad_reply'],
    ['truncated', 'bad_reply'],
    ['ext', 'bad_reply'],
    ['nested', 'bad_reply'],
    ['weird_code', 'bad_reply'],
    ['x_not_envelope', 'bad_reply'],
    ['junk_after', 'bad_reply'],
    ['zero_reply', 'internal'],
    ['unreachable', 'trap'],
    ['bail', 'trap'],
    ['call_forever', 'stack_overflow'],
  ];
  for (const [op, code] of cases) {
    it(`${op} fails with ${code} and the next call succeeds`, async () => {
      expect(await codeOf(enclave.call(op))).toBe(code);
      expect(await enclave.call('ok')).toBe('fine');
    });
  }

  for (const op of ['ptr_oob', 'span_oob', 'desc_oob']) {
    it(`${op} is caught by the bounds check itself, before any byte is read`, async () => {
      await expect(enclave.call(op)).rejects.toThrow(/outside enclave memory/);
    });
  }

  it('passes an enclave error through with its code and message as detail', async () => {
    const err = await enclave.call('refuse').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnclaveError);
    expect((err as EnclaveError).code).toBe('denied');
    expect((err as EnclaveError).detail).toBe('no');
    expect((err as EnclaveError).message).not.toContain('no\n');
  });

  it('an allocator returning an out-of-bounds pointer fails with bad_reply, then recovers', async () => {
    await enclave.call('arm_alloc_oob');
    expect(await codeOf(enclave.call('ok'))).toBe('bad_reply');
    expect(await enclave.call('ok')).toBe('fine');
  });

  it('an allocator returning 0 fails with limit', async () => {
    const e = await loadEnclave(await fixture('hostile'));
    await e.call('fail_alloc');
    expect(await codeOf(e.call('ok'))).toBe('limit');
  });

  it('survives memory growth between calls', async () => {
    expect(await enclave.call('grow')).toBe('fine');
    expect(await enclave.call('ok')).toBe('fine');
  });

  it('discards state after a trap: a fresh instance serves the next call', async () => {
    const e = await loadEnclave(await fixture('hostile'));
    await e.call('fail_alloc'); // poisons this instance's allocator
    expect(await codeOf(e.call('unreachable'))).toBe('limit'); // alloc fails before the call
    const fresh = await loadEnclave(await fixture('hostile'));
    await fresh.call('arm_alloc_oob');
    expect(await codeOf(fresh.call('ok'))).toBe('bad_reply'); // discarded
    expect(await fresh.call('ok')).toBe('fine'); // new instance, allocator healthy
  });
});

describe('caller-side checks', () => {
  let enclave: Enclave;
  beforeAll(async () => {
    enclave = await loadEnclave(await fixture('hostile'));
  });

  it('refuses an op not in the contract before calling', async () => {
    expect(await codeOf(enclave.call('launch_missiles'))).toBe('unknown_op');
    expect(await codeOf(enclave.call(42 as unknown as string))).toBe('unknown_op');
  });

  it('an op name or map key from the caller reaches a message quoted and cut short, and any op value fails with unknown_op', async () => {
    const messageOf = async (promise: Promise<unknown>) => {
      const err = await promise.then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(EnclaveError);
      return err as EnclaveError;
    };
    // Values whose String() throws must still end in an EnclaveError, not a TypeError.
    for (const op of [Object.create(null), { toString: () => { throw new Error('boom'); } }, Symbol('s'), null]) {
      expect((await messageOf(enclave.call(op as string))).code).toBe('unknown_op');
    }
    const long = 'secret\n'.repeat(10_000);
    const unknown = await messageOf(enclave.call(long));
    expect(unknown.code).toBe('unknown_op');
    expect(unknown.message.length).toBeLessThan(200);
    expect(unknown.message).not.toContain('\n');

    const counter = await loadEnclave(new URL('../enclave-modules/counter/build/counter.wasm', import.meta.url));
    const extra = await messageOf(counter.call('incr', { [long]: 1 }));
    expect(extra.code).toBe('invalid_args');
    expect(extra.message.length).toBeLessThan(200);
    expect(extra.message).not.toContain('\n');
  });

  it('refuses an oversized request before copying it', async () => {
    expect(await codeOf(enclave.call('ok', 'x'.repeat(20_000)))).toBe('too_large');
    expect(await enclave.call('ok')).toBe('fine');
  });

  it('refuses arguments nested deeper than the limit', async () => {
    let deep: unknown = 1;
    for (let i = 0; i < 20; i++) deep = [deep];
    expect(await codeOf(enclave.call('ok', deep))).toBe('invalid_args');
    expect(await enclave.call('ok')).toBe('fine');
  });

  it('refuses arguments that cannot be encoded (cycles, extension types)', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(await codeOf(enclave.call('ok', cyclic))).toBe('invalid_args');
    expect(await codeOf(enclave.call('ok', new Date(0)))).toBe('invalid_args');
    expect(await enclave.call('ok')).toBe('fine');
  });

  it('enforces requires: an op runs only after the ops it requires succeeded', async () => {
    const e = await loadEnclave(await fixture('hostile'));
    expect(await codeOf(e.call('order'))).toBe('state');
    await e.call('ok');
    expect(await e.call('order')).toBe('fine');
  });

  it('fails every call after close with closed', async () => {
    const e = await loadEnclave(await fixture('hostile'));
    e.close();
    expect(await codeOf(e.call('ok'))).toBe('closed');
  });

  it('never hands out a view of enclave memory', async () => {
    const e = await loadEnclave(await watModule(minimalWat(), MINIMAL_CONTRACT));
    // A reply's bytes are copied: decoding later calls cannot change earlier results.
    const first = await e.call('ping');
    await e.call('ping');
    expect(first).toBe(true);
  });
});

describe('log capability', () => {
  const FLOOD = `(module
    (import "enclave" "log" (func $log (param i32 i32 i32)))
    (memory (export "memory") 1 1)
    (data (i32.const 0x100) "\\00\\02\\00\\00\\05\\00\\00\\00")
    (data (i32.const 0x200) "\\81\\a2ok\\c3")
    (data (i32.const 0x300) "line")
    (func (export "enclave_abi_version") (result i32) (i32.const 1))
    (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
    (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
      (local $i i32)
      (loop $more
        (call $log (i32.const 1) (i32.const 0x300) (i32.const 4))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $i) (i32.const 10000))))
      (call $log (i32.const 9) (i32.const 0xfff0) (i32.const 0x7fffffff))
      (i32.const 0x100)))`;

  it('caps a flood of log lines per call and says how many were dropped', async () => {
    const bytes = await watModule(FLOOD, { ...MINIMAL_CONTRACT, capabilities: ['log'], limits: { ...MINIMAL_CONTRACT.limits, fuel: 50_000_000 } });
    const lines: [string, string][] = [];
    const e = await loadEnclave(bytes, { capabilities: ['log'], onLog: (level, message) => lines.push([level, message]) });
    expect(await e.call('ping')).toBe(true);
    await new Promise((r) => setTimeout(r, 10));
    expect(lines).toHaveLength(257);
    expect(lines[0]).toEqual(['info', 'line']);
    expect(lines[256]![1]).toMatch(/9745 more lines in this call were dropped/);
    lines.length = 0;
    expect(await e.call('ping')).toBe(true); // the cap is per call
    await new Promise((r) => setTimeout(r, 10));
    expect(lines).toHaveLength(257);
  });

  it('an async logger that rejects is not an unhandled rejection', async () => {
    const bytes = await watModule(FLOOD.replace('(i32.const 10000)', '(i32.const 2)'), { ...MINIMAL_CONTRACT, capabilities: ['log'] });
    const unhandled: unknown[] = [];
    const listener = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', listener);
    try {
      let seen = 0;
      const e = await loadEnclave(bytes, {
        capabilities: ['log'],
        onLog: async () => {
          seen++;
          throw new Error('an async logger failed');
        },
      });
      expect(await e.call('ping')).toBe(true);
      await new Promise((r) => setTimeout(r, 20));
      expect(seen).toBe(3);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', listener);
    }
  });

  it('delivers lines after the call, never inside it, and survives a throwing logger', async () => {
    const bytes = await watModule(FLOOD.replace('(i32.const 10000)', '(i32.const 2)'), { ...MINIMAL_CONTRACT, capabilities: ['log'] });
    let inside = false;
    let seen = 0;
    const e = await loadEnclave(bytes, {
      capabilities: ['log'],
      onLog: () => {
        seen++;
        if (inside) throw new Error('logger ran inside the call');
        throw new Error('a throwing logger');
      },
    });
    inside = true;
    const pending = e.call('ping');
    inside = false;
    expect(await pending).toBe(true);
    await new Promise((r) => setTimeout(r, 10));
    // two lines, and the out-of-bounds one becomes a placeholder with level 9 mapped to info
    expect(seen).toBe(3);
  });
});

describe('report capability', () => {
  it('refuses report data outside 8..64 bytes before copying it out of enclave memory', async () => {
    // report(0, 65536, 0, 0): the whole memory as report data; replies true when refused with -2.
    const wat = `(module
      (import "enclave" "report" (func $report (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1 1)
      (data (i32.const 0x100) "\\00\\02\\00\\00\\05\\00\\00\\00")
      (data (i32.const 0x108) "\\00\\03\\00\\00\\05\\00\\00\\00")
      (data (i32.const 0x200) "\\81\\a2ok\\c3")
      (data (i32.const 0x300) "\\81\\a2ok\\c2")
      (func (export "enclave_abi_version") (result i32) (i32.const 1))
      (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
      (func (export "enclave_call") (param i32 i32) (result i32)
        (select (i32.const 0x100) (i32.const 0x108)
          (i32.eq (call $report (i32.const 0) (i32.const 0x10000) (i32.const 0) (i32.const 0)) (i32.const -2)))))`;
    const contract = { ...MINIMAL_CONTRACT, capabilities: ['attest'] };
    const attestation = new SoftwareAttestationProvider({ dir: await mkdtemp(path.join(tmpdir(), 'enclave-report-')) });
    const enclave = await loadEnclave(await watModule(wat, contract), { capabilities: ['attest'], attestation });
    const from = vi.spyOn(Buffer, 'from');
    try {
      expect(await enclave.call('ping')).toBe(true);
      expect(from.mock.calls.some(([value]) => value instanceof Uint8Array && value.length > 64)).toBe(false);
    } finally {
      from.mockRestore();
    }
  });
});
