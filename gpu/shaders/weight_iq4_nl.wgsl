// ggml IQ4_NL: blocks of 32 elements in 18 bytes, an f16 scale then 16
// bytes of 4-bit codes laid out as in Q4_0; the value is d times the
// code's level (kvalueIQ4NL).
//!include weight_bytes
//!include weight_iq4
fn wload(i: u32) -> f32 {
    let base = (i / 32u) * 18u;
    let j = i % 32u;
    let b = wbyte(base + 2u + (j & 15u));
    return wf16(base) * kvalueIQ4NL(select(b & 15u, b >> 4u, j >= 16u));
}
