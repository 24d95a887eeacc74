;; A loop inside a loop that calls a capability import (`enclave.now`, clock granted) on every
;; inner iteration; the outer loop never ends. Host calls in the loop must not escape metering.
(module
  (import "enclave" "now" (func $now (result i64)))
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\00\02\00\00\09\00\00\00")
  (data (i32.const 0x200) "\81\a2ok\a4fine")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $i i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x61))
      (then
        (loop $outer
          (local.set $i (i32.const 0))
          (loop $inner
            (drop (call $now))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $inner (i32.lt_u (local.get $i) (i32.const 1000))))
          (br $outer))))
    (i32.const 0x100)))
