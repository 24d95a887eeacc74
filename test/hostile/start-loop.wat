;; A start function that never returns. Fuel applies to it (the start budget is limits.fuel):
;; the load fails with fuel_exhausted instead of hanging the host.
(module
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\00\02\00\00\09\00\00\00")
  (data (i32.const 0x200) "\81\a2ok\a4fine")
  (func $start (loop $forever (br $forever)))
  (start $start)
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32) (i32.const 0x100)))
