;; enclave.random(ptr, 65536) through call_indirect, forever (random granted). Capability imports
;; charge their own fuel, by size, on the host: the table route pays as a direct call does.
(module
  (type $rt (func (param i32 i32) (result i32)))
  (import "enclave" "random" (func $random (type $rt)))
  (memory (export "memory") 2 2)
  (table 1 1 funcref)
  (elem (i32.const 0) $random)
  (data (i32.const 0x100) "\00\02\00\00\09\00\00\00")
  (data (i32.const 0x200) "\81\a2ok\a4fine")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x61))
      (then (loop $more (drop (call_indirect (type $rt) (i32.const 0x10000) (i32.const 65536) (i32.const 0))) (br $more))))
    (i32.const 0x100)))
