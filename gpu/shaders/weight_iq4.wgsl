// kvalueIQ4NL returns ggml's non-linear level of IQ4_NL and IQ4_XS for a
// 4-bit code: 16 int8 levels, denser near zero, packed four a word
// (-127 -104 -83 -65 | -49 -35 -22 -10 | 1 13 25 38 | 53 69 89 113).
// Unpacked from constants rather than indexed in a private array, which
// not every WGSL compiler initializes.
fn kvalueIQ4NL(q: u32) -> f32 {
    let w = select(select(0xbfad9881u, 0xf6eaddcfu, q >= 4u), select(0x26190d01u, 0x71594535u, q >= 12u), q >= 8u);
    return f32(bitcast<i32>((w >> (8u * (q & 3u))) << 24u) >> 24u);
}
