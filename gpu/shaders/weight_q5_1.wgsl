// ggml Q5_1: blocks of 32 elements in 24 bytes: f16 d, f16 m, a 32-bit
// qh, then 16 bytes of nibbles; element j's fifth bit is bit j of qh; the
// value is d*q + m.
//!include weight_bytes
fn wload(i: u32) -> f32 {
    let base = (i / 32u) * 24u;
    let j = i % 32u;
    let b = wbyte(base + 8u + (j & 15u));
    let h = (wbyte(base + 4u + j / 8u) >> (j % 8u)) & 1u;
    let q = select(b & 15u, b >> 4u, j >= 16u) | (h << 4u);
    let dm = wf16x2(base); // 24-byte blocks: base is a multiple of 4
    return f32(q) * dm.x + dm.y;
}
