;; wordcount: counts the words in every string value of its JSON input (object keys are not counted).
;; Output: {"words": N, "strings": M}. ABI v1 (docs/plugins.md), no imports.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"words\":")
  (data (i32.const 32) ",\"strings\":")
  (global $heap (mut i32) (i32.const 1024))

  ;; A bump allocator: the instance lives for one call, so nothing is ever freed.
  (func $alloc (export "alloc") (param $len i32) (result i32)
    (local $ptr i32) (local $end i32) (local $have i32)
    (local.set $ptr (global.get $heap))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535))
                                      (i32.const 16)))
              (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  ;; ASCII letters and digits, and every byte of a multi-byte UTF-8 character, make words.
  (func $is_word (param $c i32) (result i32)
    (i32.or
      (i32.or
        (i32.lt_u (i32.sub (i32.or (local.get $c) (i32.const 32)) (i32.const 97)) (i32.const 26))
        (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 10)))
      (i32.ge_u (local.get $c) (i32.const 128))))

  ;; Whether the first byte after $i that is not JSON whitespace is a colon (the string was a key).
  (func $key_follows (param $i i32) (param $end i32) (result i32)
    (local $c i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $i)))
        (if (i32.eq (local.get $c) (i32.const 58)) (then (return (i32.const 1))))
        (br_if $done (i32.eqz (i32.or (i32.or (i32.eq (local.get $c) (i32.const 32)) (i32.eq (local.get $c) (i32.const 9)))
                                      (i32.or (i32.eq (local.get $c) (i32.const 10)) (i32.eq (local.get $c) (i32.const 13))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  (func $digits (param $n i32) (result i32)
    (local $d i32)
    (local.set $d (i32.const 1))
    (block $done
      (loop $next
        (br_if $done (i32.lt_u (local.get $n) (i32.const 10)))
        (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
        (local.set $d (i32.add (local.get $d) (i32.const 1)))
        (br $next)))
    (local.get $d))

  ;; Writes $n in decimal at $p; returns the address after it.
  (func $put_u32 (param $p i32) (param $n i32) (result i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $p) (call $digits (local.get $n))))
    (local.set $p (local.get $end))
    (loop $next
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $next (local.get $n)))
    (local.get $end))

  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $end i32) (local $c i32) (local $in_str i32) (local $in_word i32)
    (local $words i32) (local $strings i32) (local $here i32) (local $out i32) (local $p i32)
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (local.set $i (local.get $ptr))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $c (i32.load8_u (local.get $i)))
        (if (local.get $in_str)
          (then
            (if (i32.eq (local.get $c) (i32.const 34))
              (then
                (local.set $in_str (i32.const 0))
                (local.set $in_word (i32.const 0))
                (if (call $key_follows (i32.add (local.get $i) (i32.const 1)) (local.get $end))
                  (then
                    (local.set $words (i32.sub (local.get $words) (local.get $here)))
                    (local.set $strings (i32.sub (local.get $strings) (i32.const 1))))))
              (else
                (if (i32.eq (local.get $c) (i32.const 92))
                  (then
                    ;; An escape separates words; \uXXXX is six bytes, the others two.
                    (local.set $in_word (i32.const 0))
                    (local.set $i (i32.add (local.get $i)
                      (select (i32.const 5) (i32.const 1)
                        (i32.eq (i32.load8_u (i32.add (local.get $i) (i32.const 1))) (i32.const 117))))))
                  (else
                    (if (call $is_word (local.get $c))
                      (then
                        (if (i32.eqz (local.get $in_word))
                          (then
                            (local.set $words (i32.add (local.get $words) (i32.const 1)))
                            (local.set $here (i32.add (local.get $here) (i32.const 1)))))
                        (local.set $in_word (i32.const 1)))
                      (else (local.set $in_word (i32.const 0)))))))))
          (else
            (if (i32.eq (local.get $c) (i32.const 34))
              (then
                (local.set $in_str (i32.const 1))
                (local.set $here (i32.const 0))
                (local.set $strings (i32.add (local.get $strings) (i32.const 1)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    ;; {"words":N,"strings":M} needs at most 9 + 10 + 11 + 10 + 1 bytes.
    (local.set $out (call $alloc (i32.const 48)))
    (memory.copy (local.get $out) (i32.const 16) (i32.const 9))
    (local.set $p (call $put_u32 (i32.add (local.get $out) (i32.const 9)) (local.get $words)))
    (memory.copy (local.get $p) (i32.const 32) (i32.const 11))
    (local.set $p (call $put_u32 (i32.add (local.get $p) (i32.const 11)) (local.get $strings)))
    (i32.store8 (local.get $p) (i32.const 125))
    (local.set $p (i32.add (local.get $p) (i32.const 1)))
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
      (i64.extend_i32_u (i32.sub (local.get $p) (local.get $out)))))
)
