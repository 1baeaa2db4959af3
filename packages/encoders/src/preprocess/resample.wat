;; Pillow's fixed-point resampling passes and the normalisation to float planes, for the fused
;; kernel in kernel.ts (which lays out memory, writes the tap records and checks every bound).
;;
;; Tap records, one per output column (hpass) or row (vpass), recStride bytes apart:
;;   i32 offset   byte offset of the first tap's pixel (hpass: within a row; vpass: of the first row)
;;   i32 pairs    taps / 2, rounded up (an odd count ends with a zero weight)
;;   per pair: i32 hi = (w0 >> 11) | (w1 >> 11) << 16, i32 lo = (w0 & 2047) | (w1 & 2047) << 16
;; A 22-bit Pillow weight w is hi * 2048 + lo with lo in 0..2047, so both halves fit the 16-bit lanes
;; of i32x4.dot_i16x8_s and (sum hi * px) * 2048 + sum lo * px is Pillow's exact int32 sum.
(module
  (memory (export "memory") 1)

  ;; Pillow's horizontal pass over packed RGB rows: nRows rows of inStride bytes from src, count
  ;; output pixels per row (3 bytes each, rows packed) to out. Two rows share each weight load; an
  ;; odd last row is paired with the spare row after the input and writes the spare row after the output.
  ;; Each step takes two taps of one pixel: R, G, B of both as i16 pairs (R0 R1 G0 G1 B0 B1 0 0).
  (func (export "hpass")
    (param $src i32) (param $inStride i32) (param $nRows i32)
    (param $rec i32) (param $recStride i32) (param $count i32) (param $out i32)
    (local $y i32) (local $x i32) (local $row i32) (local $r i32) (local $p i32) (local $np i32) (local $w i32) (local $out1 i32)
    (local $hi0 v128) (local $lo0 v128) (local $hi1 v128) (local $lo1 v128) (local $v v128) (local $wh v128) (local $wl v128)
    (local.set $out1 (i32.add (local.get $out) (i32.mul (local.get $count) (i32.const 3))))
    (block $done_y (loop $ly
      (br_if $done_y (i32.ge_u (local.get $y) (local.get $nRows)))
      (local.set $row (i32.add (local.get $src) (i32.mul (local.get $y) (local.get $inStride))))
      (local.set $r (local.get $rec))
      (local.set $x (i32.const 0))
      (block $done_x (loop $lx
        (br_if $done_x (i32.ge_u (local.get $x) (local.get $count)))
        (local.set $p (i32.add (local.get $row) (i32.load (local.get $r))))
        (local.set $np (i32.load offset=4 (local.get $r)))
        (local.set $w (i32.add (local.get $r) (i32.const 8)))
        (local.set $hi0 (v128.const i32x4 0 0 0 0))
        (local.set $lo0 (v128.const i32x4 0 0 0 0))
        (local.set $hi1 (v128.const i32x4 0 0 0 0))
        (local.set $lo1 (v128.const i32x4 0 0 0 0))
        (block $done_t (loop $lt
          (br_if $done_t (i32.eqz (local.get $np)))
          (local.set $wh (v128.load32_splat (local.get $w)))
          (local.set $wl (v128.load32_splat offset=4 (local.get $w)))
          (local.set $v (i8x16.shuffle 0 16 3 16 1 16 4 16 2 16 5 16 16 16 16 16
            (v128.load64_zero (local.get $p)) (v128.const i32x4 0 0 0 0)))
          (local.set $hi0 (i32x4.add (local.get $hi0) (i32x4.dot_i16x8_s (local.get $v) (local.get $wh))))
          (local.set $lo0 (i32x4.add (local.get $lo0) (i32x4.dot_i16x8_s (local.get $v) (local.get $wl))))
          (local.set $v (i8x16.shuffle 0 16 3 16 1 16 4 16 2 16 5 16 16 16 16 16
            (v128.load64_zero (i32.add (local.get $p) (local.get $inStride))) (v128.const i32x4 0 0 0 0)))
          (local.set $hi1 (i32x4.add (local.get $hi1) (i32x4.dot_i16x8_s (local.get $v) (local.get $wh))))
          (local.set $lo1 (i32x4.add (local.get $lo1) (i32x4.dot_i16x8_s (local.get $v) (local.get $wl))))
          (local.set $p (i32.add (local.get $p) (i32.const 6)))
          (local.set $w (i32.add (local.get $w) (i32.const 8)))
          (local.set $np (i32.sub (local.get $np) (i32.const 1)))
          (br $lt)))
        ;; Values outside 0..255 saturate in the two narrowings (signed to i16, then to u8).
        (local.set $v (i32x4.shr_s (i32x4.add (i32x4.add (i32x4.shl (local.get $hi0) (i32.const 11)) (local.get $lo0)) (v128.const i32x4 2097152 2097152 2097152 2097152)) (i32.const 22)))
        (local.set $wh (i32x4.shr_s (i32x4.add (i32x4.add (i32x4.shl (local.get $hi1) (i32.const 11)) (local.get $lo1)) (v128.const i32x4 2097152 2097152 2097152 2097152)) (i32.const 22)))
        (local.set $v (i16x8.narrow_i32x4_s (local.get $v) (local.get $wh)))
        (local.set $v (i8x16.narrow_i16x8_u (local.get $v) (local.get $v)))
        ;; Three bytes per pixel (a 4-byte store would clobber the other row's first pixel).
        (v128.store16_lane 0 (local.get $out) (local.get $v))
        (v128.store8_lane offset=2 2 (local.get $out) (local.get $v))
        (v128.store16_lane 2 (local.get $out1) (local.get $v))
        (v128.store8_lane offset=2 6 (local.get $out1) (local.get $v))
        (local.set $out (i32.add (local.get $out) (i32.const 3)))
        (local.set $out1 (i32.add (local.get $out1) (i32.const 3)))
        (local.set $r (i32.add (local.get $r) (local.get $recStride)))
        (local.set $x (i32.add (local.get $x) (i32.const 1)))
        (br $lx)))
      ;; Both pointers have run one row; skip the row the other one wrote.
      (local.set $out (local.get $out1))
      (local.set $out1 (i32.add (local.get $out1) (i32.mul (local.get $count) (i32.const 3))))
      (local.set $y (i32.add (local.get $y) (i32.const 2)))
      (br $ly))))

  ;; Pillow's vertical pass, 16 bytes per step, two taps per step.
  (func (export "vpass")
    (param $src i32) (param $rowStride i32) (param $width i32)
    (param $rec i32) (param $recStride i32) (param $nOut i32) (param $out i32)
    (local $y i32) (local $i i32) (local $base i32) (local $np i32) (local $p i32) (local $w i32) (local $k i32)
    (local $a v128) (local $b v128) (local $il v128) (local $ih v128) (local $wh v128) (local $wl v128) (local $e v128)
    (local $h0 v128) (local $h1 v128) (local $h2 v128) (local $h3 v128)
    (local $l0 v128) (local $l1 v128) (local $l2 v128) (local $l3 v128) (local $half v128)
    (local.set $half (v128.const i32x4 2097152 2097152 2097152 2097152))
    (block $done_y (loop $ly
      (br_if $done_y (i32.ge_u (local.get $y) (local.get $nOut)))
      (local.set $base (i32.add (local.get $src) (i32.load (local.get $rec))))
      (local.set $np (i32.load offset=4 (local.get $rec)))
      (local.set $i (i32.const 0))
      (block $done_i (loop $li
        (br_if $done_i (i32.ge_u (local.get $i) (local.get $width)))
        (local.set $h0 (v128.const i32x4 0 0 0 0)) (local.set $h1 (v128.const i32x4 0 0 0 0))
        (local.set $h2 (v128.const i32x4 0 0 0 0)) (local.set $h3 (v128.const i32x4 0 0 0 0))
        (local.set $l0 (v128.const i32x4 0 0 0 0)) (local.set $l1 (v128.const i32x4 0 0 0 0))
        (local.set $l2 (v128.const i32x4 0 0 0 0)) (local.set $l3 (v128.const i32x4 0 0 0 0))
        (local.set $p (i32.add (local.get $base) (local.get $i)))
        (local.set $w (i32.add (local.get $rec) (i32.const 8)))
        (local.set $k (local.get $np))
        (block $done_t (loop $lt
          (br_if $done_t (i32.eqz (local.get $k)))
          (local.set $a (v128.load (local.get $p)))
          (local.set $b (v128.load (i32.add (local.get $p) (local.get $rowStride))))
          (local.set $il (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $a) (local.get $b)))
          (local.set $ih (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $a) (local.get $b)))
          (local.set $wh (v128.load32_splat (local.get $w)))
          (local.set $wl (v128.load32_splat offset=4 (local.get $w)))
          (local.set $e (i16x8.extend_low_i8x16_u (local.get $il)))
          (local.set $h0 (i32x4.add (local.get $h0) (i32x4.dot_i16x8_s (local.get $e) (local.get $wh))))
          (local.set $l0 (i32x4.add (local.get $l0) (i32x4.dot_i16x8_s (local.get $e) (local.get $wl))))
          (local.set $e (i16x8.extend_high_i8x16_u (local.get $il)))
          (local.set $h1 (i32x4.add (local.get $h1) (i32x4.dot_i16x8_s (local.get $e) (local.get $wh))))
          (local.set $l1 (i32x4.add (local.get $l1) (i32x4.dot_i16x8_s (local.get $e) (local.get $wl))))
          (local.set $e (i16x8.extend_low_i8x16_u (local.get $ih)))
          (local.set $h2 (i32x4.add (local.get $h2) (i32x4.dot_i16x8_s (local.get $e) (local.get $wh))))
          (local.set $l2 (i32x4.add (local.get $l2) (i32x4.dot_i16x8_s (local.get $e) (local.get $wl))))
          (local.set $e (i16x8.extend_high_i8x16_u (local.get $ih)))
          (local.set $h3 (i32x4.add (local.get $h3) (i32x4.dot_i16x8_s (local.get $e) (local.get $wh))))
          (local.set $l3 (i32x4.add (local.get $l3) (i32x4.dot_i16x8_s (local.get $e) (local.get $wl))))
          (local.set $p (i32.add (local.get $p) (i32.shl (local.get $rowStride) (i32.const 1))))
          (local.set $w (i32.add (local.get $w) (i32.const 8)))
          (local.set $k (i32.sub (local.get $k) (i32.const 1)))
          (br $lt)))
        (v128.store (i32.add (local.get $out) (local.get $i))
          (i8x16.narrow_i16x8_u
            (i16x8.narrow_i32x4_s
              (i32x4.shr_s (i32x4.add (i32x4.add (i32x4.shl (local.get $h0) (i32.const 11)) (local.get $l0)) (local.get $half)) (i32.const 22))
              (i32x4.shr_s (i32x4.add (i32x4.add (i32x4.shl (local.get $h1) (i32.const 11)) (local.get $l1)) (local.get $half)) (i32.const 22)))
            (i16x8.narrow_i32x4_s
              (i32x4.shr_s (i32x4.add (i32x4.add (i32x4.shl (local.get $h2) (i32.const 11)) (local.get $l2)) (local.get $half)) (i32.const 22))
              (i32x4.shr_s (i32x4.add (i32x4.add (i32x4.shl (local.get $h3) (i32.const 11)) (local.get $l3)) (local.get $half)) (i32.const 22)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $li)))
      (local.set $out (i32.add (local.get $out) (local.get $width)))
      (local.set $rec (i32.add (local.get $rec) (local.get $recStride)))
      (local.set $y (i32.add (local.get $y) (i32.const 1)))
      (br $ly))))

  ;; 8-bit RGB rows to three float32 planes through 3 x 256 tables.
  (func (export "planes")
    (param $src i32) (param $rowStride i32) (param $cw i32) (param $ch i32) (param $tab i32) (param $dst i32)
    (local $y i32) (local $x i32) (local $p i32) (local $d i32) (local $plane i32)
    (local.set $plane (i32.shl (i32.mul (local.get $cw) (local.get $ch)) (i32.const 2)))
    (local.set $d (local.get $dst))
    (block $done_y (loop $ly
      (br_if $done_y (i32.ge_u (local.get $y) (local.get $ch)))
      (local.set $p (i32.add (local.get $src) (i32.mul (local.get $y) (local.get $rowStride))))
      (local.set $x (i32.const 0))
      (block $done_x (loop $lx
        (br_if $done_x (i32.ge_u (local.get $x) (local.get $cw)))
        (f32.store (local.get $d) (f32.load (i32.add (local.get $tab) (i32.shl (i32.load8_u (local.get $p)) (i32.const 2)))))
        (f32.store (i32.add (local.get $d) (local.get $plane))
          (f32.load offset=1024 (i32.add (local.get $tab) (i32.shl (i32.load8_u offset=1 (local.get $p)) (i32.const 2)))))
        (f32.store (i32.add (local.get $d) (i32.shl (local.get $plane) (i32.const 1)))
          (f32.load offset=2048 (i32.add (local.get $tab) (i32.shl (i32.load8_u offset=2 (local.get $p)) (i32.const 2)))))
        (local.set $p (i32.add (local.get $p) (i32.const 3)))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (local.set $x (i32.add (local.get $x) (i32.const 1)))
        (br $lx)))
      (local.set $y (i32.add (local.get $y) (i32.const 1)))
      (br $ly))))
)
