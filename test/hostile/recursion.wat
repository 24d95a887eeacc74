;; Unbounded recursion: must end as stack_overflow (not fuel_exhausted: each frame is cheap, the
;; stack runs out first), with the instance discarded.
(module
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\00\02\00\00\09\00\00\00")
  (data (i32.const 0x200) "\81\a2ok\a4fine")
  (func $recurse (param $n i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x61))
      (then (return (call $recurse (i32.const 0)))))
    (i32.const 0x100)))
