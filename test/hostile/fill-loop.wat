;; memory.fill of 16 MiB - 64 KiB in an endless loop: one instruction each time, but 16 MiB of
;; work. Bulk memory operations pay by length (runtime/fuel.ts), so this runs out of fuel after a
;; few fills instead of holding the thread for minutes.
(module
  (memory (export "memory") 256 256)
  (data (i32.const 0x100) "\00\02\00\00\09\00\00\00")
  (data (i32.const 0x200) "\81\a2ok\a4fine")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x61))
      (then (loop $fill (memory.fill (i32.const 0x10000) (i32.const 7) (i32.const 0xff0000)) (br $fill))))
    (i32.const 0x100)))
