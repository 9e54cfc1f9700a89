// ggml IQ4_XS: super-blocks of 256 elements in 136 bytes: f16 d, a u16 of
// the scales' high bits (two per 32 elements), 4 bytes of their low
// nibbles, then 8 runs of 16 bytes of 4-bit codes, one per 32 elements,
// laid out as in Q4_0. Sub-block s's scale is (low nibble s%2 of byte
// s/2) | (bits 2s of the u16) << 4, offset by 32; the value is
// d*(scale-32) times the code's level (kvalueIQ4NL).
//!include weight_bytes
//!include weight_iq4
fn wload(i: u32) -> f32 {
    let base = (i / 256u) * 136u; // a multiple of 4
    let e = i % 256u;
    let s = e / 32u;
    let j = e % 32u;
    let head = wt[base >> 2u]; // d, then the high bits
    let lo = (wbyte(base + 4u + s / 2u) >> (4u * (s % 2u))) & 15u;
    let hi = (head >> (16u + 2u * s)) & 3u;
    let dl = unpack2x16float(head).x * f32(i32(lo | (hi << 4u)) - 32);
    let b = wbyte(base + 8u + 16u * s + (j & 15u));
    return dl * kvalueIQ4NL(select(b & 15u, b >> 4u, j >= 16u));
}
