// ggml Q5_0: blocks of 32 elements in 22 bytes: f16 d, a 32-bit qh (at
// byte 2, unaligned), then 16 bytes of nibbles as in Q4_0; element j's
// fifth bit is bit j of qh; the value is d * (q - 16).
//!include weight_bytes
fn wload(i: u32) -> f32 {
    let base = (i / 32u) * 22u;
    let j = i % 32u;
    let b = wbyte(base + 6u + (j & 15u));
    let h = (wbyte(base + 2u + j / 8u) >> (j % 8u)) & 1u;
    let q = select(b & 15u, b >> 4u, j >= 16u) | (h << 4u);
    return (f32(q) - 16.0) * wf16(base);
}
