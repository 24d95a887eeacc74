;; Spins forever when asked: `attack` never returns. In-process this must end in fuel_exhausted.
;; Every corpus module answers `ok` with {ok: "fine"} (descriptor at 0x100), so a test can check
;; the next call succeeds. Ops are told apart by the first letter of the op name, at byte 5 of
;; the request ({op: ...}: map header, fixstr "op", fixstr header, then the name).
(module
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\00\02\00\00\09\00\00\00")
  (data (i32.const 0x200) "\81\a2ok\a4fine")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x61)) ;; a: attack
      (then (loop $spin (br $spin))))
    (i32.const 0x100)))
