/** Shared by test/attest-runtime.test.ts and test/worker-attest.test.ts. */

// An enclave that exercises seal_key and report. It dispatches on the first letter of the op name
// (byte 5 of the request, see test/fixtures/hostile.wat) and answers with prepared replies:
//   status reply at 0x400: {ok: <negative or zero fixint>}
//   key reply    at 0x300: {ok: bin8(32)} with the key written at 0x306
//   length reply at 0x600: {ok: uint16}
//   token reply  at 0xff9: {ok: bin16(n)} with the token written at 0x1000
export const ATTEST_WAT = `(module
  (import "enclave" "seal_key" (func $seal_key (param i32 i32) (result i32)))
  (import "enclave" "report" (func $report (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\\00\\04\\00\\00\\05\\00\\00\\00")
  (data (i32.const 0x108) "\\00\\03\\00\\00\\26\\00\\00\\00")
  (data (i32.const 0x118) "\\00\\06\\00\\00\\07\\00\\00\\00")
  (data (i32.const 0x300) "\\81\\a2ok\\c4\\20")
  (data (i32.const 0x400) "\\81\\a2ok\\00")
  (data (i32.const 0x500) "abcdefghijklmnopqrstuvwxyz012345")
  (data (i32.const 0x600) "\\81\\a2ok\\cd\\00\\00")
  (data (i32.const 0xff9) "\\81\\a2ok\\c5\\00\\00")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x8000))
  (func $status (param $s i32) (result i32)
    (i32.store8 (i32.const 0x404) (local.get $s))
    (i32.const 0x100))
  (func $length (param $n i32) (result i32)
    (i32.store8 (i32.const 0x605) (i32.shr_u (local.get $n) (i32.const 8)))
    (i32.store8 (i32.const 0x606) (local.get $n))
    (i32.const 0x118))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $c i32) (local $n i32)
    (local.set $c (i32.load8_u offset=5 (local.get $p)))
    ;; m: seal with the measurement policy; s: signer policy; u: unknown policy; o: out of bounds
    (if (i32.eq (local.get $c) (i32.const 0x6d)) (then (return (call $status (call $seal_key (i32.const 0) (i32.const 0x306))))))
    (if (i32.eq (local.get $c) (i32.const 0x73)) (then (return (call $status (call $seal_key (i32.const 1) (i32.const 0x306))))))
    (if (i32.eq (local.get $c) (i32.const 0x75)) (then (return (call $status (call $seal_key (i32.const 9) (i32.const 0x306))))))
    (if (i32.eq (local.get $c) (i32.const 0x6f)) (then (return (call $status (call $seal_key (i32.const 0) (i32.const 0xfff0))))))
    ;; k: the key sealed last
    (if (i32.eq (local.get $c) (i32.const 0x6b)) (then (return (i32.const 0x108))))
    ;; r: report binding the 32 bytes at 0x500, token into a 0x2000-byte buffer
    (if (i32.eq (local.get $c) (i32.const 0x72)) (then
      (local.set $n (call $report (i32.const 0x500) (i32.const 32) (i32.const 0x1000) (i32.const 0x2000)))
      (if (i32.lt_s (local.get $n) (i32.const 0)) (then (return (call $status (local.get $n)))))
      (i32.store8 (i32.const 0xffe) (i32.shr_u (local.get $n) (i32.const 8)))
      (i32.store8 (i32.const 0xfff) (local.get $n))
      (i32.store (i32.const 0x110) (i32.const 0xff9))
      (i32.store (i32.const 0x114) (i32.add (local.get $n) (i32.const 7)))
      (return (i32.const 0x110))))
    ;; t: report into a 10-byte buffer: returns the length needed, writes nothing
    (if (i32.eq (local.get $c) (i32.const 0x74)) (then
      (return (call $length (call $report (i32.const 0x500) (i32.const 32) (i32.const 0x1000) (i32.const 10))))))
    ;; b: 65 bytes of report data; z: 4 bytes; x: data out of bounds
    (if (i32.eq (local.get $c) (i32.const 0x62)) (then (return (call $status (call $report (i32.const 0x500) (i32.const 65) (i32.const 0x1000) (i32.const 0x2000))))))
    (if (i32.eq (local.get $c) (i32.const 0x7a)) (then (return (call $status (call $report (i32.const 0x500) (i32.const 4) (i32.const 0x1000) (i32.const 0x2000))))))
    (if (i32.eq (local.get $c) (i32.const 0x78)) (then (return (call $status (call $report (i32.const 0xfff0) (i32.const 32) (i32.const 0x1000) (i32.const 0x2000))))))
    (i32.const 0))
)`;

export const ATTEST_CONTRACT = {
  abi: 1,
  name: 'attester',
  version: '1.0.0',
  svn: 4,
  capabilities: ['seal', 'attest'],
  limits: { requestBytes: 1024, replyBytes: 16384, depth: 4, memoryPages: 1 },
  ops: Object.fromEntries(
    ['m_seal', 's_seal', 'u_seal', 'o_seal', 'key', 'report', 'tiny_report', 'big_data', 'zero_data', 'x_data'].map((op) => [op, {}]),
  ),
};
