// Strict UTF-8 validation (RFC 3629 §3-4, Unicode Table 3-7): no overlong forms, no surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequences. msgpack str must be UTF-8
// (msgpack spec, "str format family"); accepting WTF-8 here would let a caller smuggle lone
// surrogates that other decoders on the host side treat differently.

/** Whether `[p, p+n)` is well-formed UTF-8. */
export function validUtf8(p: usize, n: usize): bool {
  let end = p + n;
  while (p < end) {
    // ASCII fast path, 8 bytes at a time.
    while (p + 8 <= end && (load<u64>(p) & 0x8080808080808080) == 0) p += 8;
    if (p >= end) break;
    let b0 = <u32>load<u8>(p);
    if (b0 < 0x80) {
      p++;
      continue;
    }
    if (b0 < 0xc2) return false; // continuation byte or overlong 2-byte lead (0xc0, 0xc1)
    if (b0 < 0xe0) {
      if (p + 2 > end) return false;
      if ((<u32>load<u8>(p, 1) & 0xc0) != 0x80) return false;
      p += 2;
      continue;
    }
    if (b0 < 0xf0) {
      if (p + 3 > end) return false;
      let b1 = <u32>load<u8>(p, 1);
      let b2 = <u32>load<u8>(p, 2);
      if ((b1 & 0xc0) != 0x80 || (b2 & 0xc0) != 0x80) return false;
      if (b0 == 0xe0 && b1 < 0xa0) return false; // overlong
      if (b0 == 0xed && b1 >= 0xa0) return false; // surrogate
      p += 3;
      continue;
    }
    if (b0 < 0xf5) {
      if (p + 4 > end) return false;
      let b1 = <u32>load<u8>(p, 1);
      let b2 = <u32>load<u8>(p, 2);
      let b3 = <u32>load<u8>(p, 3);
      if ((b1 & 0xc0) != 0x80 || (b2 & 0xc0) != 0x80 || (b3 & 0xc0) != 0x80) return false;
      if (b0 == 0xf0 && b1 < 0x90) return false; // overlong
      if (b0 == 0xf4 && b1 >= 0x90) return false; // above U+10FFFF
      p += 4;
      continue;
    }
    return false; // 0xf5..0xff
  }
  return true;
}
