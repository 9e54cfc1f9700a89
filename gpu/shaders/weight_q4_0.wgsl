// ggml Q4_0: blocks of 32 elements in 18 bytes, an f16 scale then 16
// bytes; element j < 16 is the low nibble of byte j, j+16 its high nibble;
// the value is d * (q - 8).
//!include weight_bytes
fn wload(i: u32) -> f32 {
    let base = (i / 32u) * 18u;
    let j = i % 32u;
    let b = wbyte(base + 2u + (j & 15u));
    let q = select(b & 15u, b >> 4u, j >= 16u);
    return wf16(base) * (f32(q) - 8.0);
}
