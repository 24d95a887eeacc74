;; `attack` replies with a length of 4 GiB - 1: refused (too_large) before a byte is read.
(module
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\00\02\00\00\09\00\00\00")
  (data (i32.const 0x108) "\00\02\00\00\ff\ff\ff\ff")
  (data (i32.const 0x200) "\81\a2ok\a4fine")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x61)) (then (return (i32.const 0x108))))
    (i32.const 0x100)))
