;; Imports WASI's fd_write: refused at load (invalid_module); enclaves import only from "enclave".
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\00\02\00\00\09\00\00\00")
  (data (i32.const 0x200) "\81\a2ok\a4fine")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32) (i32.const 0x100)))
