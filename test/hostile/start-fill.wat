;; A start function that fills 16 MiB - 64 KiB with memory.fill in an endless loop: charged by
;; length under the start budget, so the load fails with fuel_exhausted in a few fills.
(module
  (memory (export "memory") 256 256)
  (data (i32.const 0x100) "\00\02\00\00\09\00\00\00")
  (data (i32.const 0x200) "\81\a2ok\a4fine")
  (func $start (loop $fill (memory.fill (i32.const 0x10000) (i32.const 7) (i32.const 0xff0000)) (br $fill)))
  (start $start)
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32) (i32.const 0x100)))
