// ggml Q4_1: blocks of 32 elements in 20 bytes: f16 d, f16 m, then 16
// bytes of nibbles as in Q4_0; the value is d*q + m.
//!include weight_bytes
fn wload(i: u32) -> f32 {
    let base = (i / 32u) * 20u;
    let dm = wf16x2(base); // 20-byte blocks: base is a multiple of 4
    let j = i % 32u;
    let b = wbyte(base + 4u + (j & 15u));
    let q = select(b & 15u, b >> 4u, j >= 16u);
    return f32(q) * dm.x + dm.y;
}
