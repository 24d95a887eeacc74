;; Text meant to drive a terminal (issue 9, finding 9): `attack` fails with `denied` and a detail of
;; "A ESC[2K B U+202E C" (ESC[2K erases the line, U+202E reverses what follows); an export name and
;; the contract's version (corpus.ts) carry the same. The call ends in its code like any other; the
;; CLI escapes all of it before printing (test/cli-escape.test.ts, host/cli/_escape.ts).
(module
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\00\02\00\00\09\00\00\00")
  (data (i32.const 0x108) "\00\03\00\00\25\00\00\00")
  (data (i32.const 0x200) "\81\a2ok\a4fine")
  (data (i32.const 0x300) "\81\a3err\82\a4code\a6denied\a7message\aaA\1b[2KB\e2\80\aeC")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x61)) (then (return (i32.const 0x108))))
    (i32.const 0x100))
  (func (export "x\1b[2K\e2\80\ae") (result i32) (i32.const 0)))
