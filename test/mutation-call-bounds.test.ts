/**
 * The call path's checks on every number the enclave hands back (issue 10, mutation testing;
 * docs/ABI.md §4.3): the request buffer `enclave_alloc` returns (0, outside memory, or in memory
 * it just grew), the reply span (its length against `replyBytes` first, then against memory, each
 * at its exact edge), a null descriptor, and a reply in memory the call grew. The descriptor's own
 * bounds are in boundary-decisions.test.ts. Each module below is one behaviour of `enclave_alloc`
 * or `enclave_call`; whatever goes wrong is refused by the host with a stable code.
 */
import { describe, expect, it } from 'vitest';
import { EnclaveError, loadEnclave } from '../host/index.js';
import { MINIMAL_CONTRACT, watModule } from './helpers/wat.js';

const PAGE = 65_536;
/** `{ok: true}`: 5 bytes. */
const OK_TRUE = '\\81\\a2ok\\c3';
/** `{ok: "abcdefghijk"}`: 16 bytes, exactly the contract's `replyBytes`. */
const OK_16 = '\\81\\a2ok\\ababcdefghijk';

const le32 = (n: number): string =>
  [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');

/** A module of 1 page (at most 2) whose `enclave_alloc` and `enclave_call` bodies are given. */
function wat(alloc: string, call: string, data = ''): string {
  return `(module
    (memory (export "memory") 1 2)
    (data (i32.const 0x200) "${OK_TRUE}")
    ${data}
    (func (export "enclave_abi_version") (result i32) (i32.const 1))
    (func (export "enclave_alloc") (param $len i32) (result i32) ${alloc})
    (func (export "enclave_call") (param $p i32) (param $l i32) (result i32) ${call}))`;
}

/** A descriptor at 0x100 pointing at (ptr, len). */
const descriptor = (ptr: number, len: number): string => `(data (i32.const 0x100) "${le32(ptr)}${le32(len)}")`;

const CONTRACT = { ...MINIMAL_CONTRACT, limits: { ...MINIMAL_CONTRACT.limits, replyBytes: 16, memoryPages: 2 } };

/**
 * The call's value or its error code. A reply span past memory is bad_reply whichever check sees it
 * first (bytes past the end read as nothing, and the scanner refuses that too), so for those the
 * message says which check refused: `outside` is the host's bound on the span itself.
 */
async function outcome(source: string): Promise<unknown> {
  const enclave = await loadEnclave(await watModule(source, CONTRACT));
  try {
    return { value: await enclave.call('ping') };
  } catch (err) {
    if (!(err instanceof EnclaveError)) throw err;
    return /^The reply lies outside enclave memory/.test(err.message) ? { code: err.code, outside: true } : { code: err.code };
  } finally {
    await enclave.close();
  }
}

describe('the request buffer enclave_alloc returns', () => {
  const ok = descriptor(0x200, 5);

  it('0 means it could not allocate: limit', async () => {
    expect(await outcome(wat('(i32.const 0)', '(i32.const 0x100)', ok))).toEqual({ code: 'limit' });
  });

  it('a buffer ending exactly at the end of memory is used; one byte further is bad_reply', async () => {
    const end = `(i32.sub (i32.const ${PAGE}) (local.get $len))`;
    expect(await outcome(wat(end, '(i32.const 0x100)', ok))).toEqual({ value: true });
    expect(await outcome(wat(`(i32.add ${end} (i32.const 1))`, '(i32.const 0x100)', ok))).toEqual({ code: 'bad_reply' });
  });

  it('an address read as unsigned (-8 is 4 GiB - 8, outside memory): bad_reply', async () => {
    expect(await outcome(wat('(i32.const -8)', '(i32.const 0x100)', ok))).toEqual({ code: 'bad_reply' });
  });

  it('a buffer in memory alloc just grew is written there (the host refreshes its view)', async () => {
    // The call checks the request landed: the first byte at PAGE is 0x81 (a one-entry map), else it replies at 0x300 (nothing there).
    const call = `(if (result i32) (i32.eq (i32.load8_u (i32.const ${PAGE})) (i32.const 0x81)) (then (i32.const 0x100)) (else (i32.const 0x300)))`;
    expect(await outcome(wat(`(drop (memory.grow (i32.const 1))) (i32.const ${PAGE})`, call, ok))).toEqual({ value: true });
  });
});

describe('the reply span', () => {
  const alloc = '(i32.const 0x1000)';

  it('a null descriptor address is internal', async () => {
    expect(await outcome(wat(alloc, '(i32.const 0)'))).toEqual({ code: 'internal' });
  });

  it('replyBytes binds exactly: a 16-byte reply is read, a 17-byte one is too_large', async () => {
    const at = 0x400;
    const data = `(data (i32.const ${at}) "${OK_16}\\c0")`;
    expect(await outcome(wat(alloc, '(i32.const 0x100)', `${data} ${descriptor(at, 16)}`))).toEqual({ value: 'abcdefghijk' });
    expect(await outcome(wat(alloc, '(i32.const 0x100)', `${data} ${descriptor(at, 17)}`))).toEqual({ code: 'too_large' });
  });

  it('a reply both over the limit and outside memory is too_large (the length is checked first)', async () => {
    expect(await outcome(wat(alloc, '(i32.const 0x100)', descriptor(PAGE - 4, 17)))).toEqual({ code: 'too_large' });
    expect(await outcome(wat(alloc, '(i32.const 0x100)', descriptor(0xffff_fff0, 0xffff_ffff)))).toEqual({ code: 'too_large' });
  });

  it('a reply ending exactly at the end of memory is read; one byte further is bad_reply', async () => {
    const data = `(data (i32.const ${PAGE - 5}) "${OK_TRUE}")`;
    expect(await outcome(wat(alloc, '(i32.const 0x100)', `${data} ${descriptor(PAGE - 5, 5)}`))).toEqual({ value: true });
    expect(await outcome(wat(alloc, '(i32.const 0x100)', `${data} ${descriptor(PAGE - 4, 5)}`))).toEqual({ code: 'bad_reply', outside: true });
  });

  it('a reply address read as unsigned (far outside memory) is bad_reply', async () => {
    expect(await outcome(wat(alloc, '(i32.const 0x100)', descriptor(0xffff_fffc, 5)))).toEqual({ code: 'bad_reply', outside: true });
  });

  it('a reply in memory the call grew is read (the host refreshes its view)', async () => {
    // The call grows one page and writes the descriptor and `{ok: true}` there.
    const call = `(drop (memory.grow (i32.const 1)))
      (i32.store (i32.const ${PAGE + 16}) (i32.const ${PAGE + 32}))
      (i32.store (i32.const ${PAGE + 20}) (i32.const 5))
      (i64.store (i32.const ${PAGE + 32}) (i64.load (i32.const 0x200)))
      (i32.const ${PAGE + 16})`;
    expect(await outcome(wat(alloc, call))).toEqual({ value: true });
  });
});
