;; memory.grow without end. `attack` grows forever, ignoring the -1 it gets at the maximum
;; (fuel_exhausted). `grow` grows until refused and reports [successful grows, the refusal,
;; the result of asking for 65536 pages at once], e.g. [3, -1, -1] for a 1..4-page memory:
;; the cap holds inside the enclave, as a value, without a trap.
(module
  (memory (export "memory") 1 4)
  (data (i32.const 0x100) "\00\02\00\00\09\00\00\00")
  (data (i32.const 0x108) "\00\03\00\00\08\00\00\00")
  (data (i32.const 0x200) "\81\a2ok\a4fine")
  (data (i32.const 0x300) "\81\a2ok\93\00\00\00")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $c i32) (local $n i32) (local $r i32)
    (local.set $c (i32.load8_u offset=5 (local.get $p)))
    (if (i32.eq (local.get $c) (i32.const 0x61))
      (then (loop $bomb (drop (memory.grow (i32.const 1))) (br $bomb))))
    (if (i32.eq (local.get $c) (i32.const 0x67)) ;; g: grow
      (then
        (block $done
          (loop $more
            (local.set $r (memory.grow (i32.const 1)))
            (br_if $done (i32.eq (local.get $r) (i32.const -1)))
            (local.set $n (i32.add (local.get $n) (i32.const 1)))
            (br $more)))
        (i32.store8 (i32.const 0x305) (local.get $n))
        (i32.store8 (i32.const 0x306) (local.get $r))
        (i32.store8 (i32.const 0x307) (memory.grow (i32.const 65536)))
        (return (i32.const 0x108))))
    (i32.const 0x100)))
