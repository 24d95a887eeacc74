;; An allocator that returns an out-of-bounds pointer (0xffffff00) for any request of 32 bytes or
;; more: the host refuses to copy (bad_reply) and discards the instance; short requests work.
(module
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\00\02\00\00\09\00\00\00")
  (data (i32.const 0x200) "\81\a2ok\a4fine")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param $len i32) (result i32)
    (if (i32.ge_u (local.get $len) (i32.const 32)) (then (return (i32.const 0xffffff00))))
    (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32) (i32.const 0x100)))
