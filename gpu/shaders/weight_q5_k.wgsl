// ggml Q5_K: super-blocks of 256 elements in 176 bytes: f16 d, f16 dmin,
// 12 bytes of scales and mins as in Q4_K, 32 bytes of high bits (element
// e's is bit e/32 of byte e%32), 128 bytes of nibbles as in Q4_K. The
// value is d*scale*q - dmin*min.
//!include weight_bytes
//!include weight_kscale
fn wload(i: u32) -> f32 {
    let base = (i / 256u) * 176u;
    let e = i % 256u;
    let sm = kscale(base + 4u, e / 32u);
    let b = wbyte(base + 48u + 32u * (e / 64u) + e % 32u);
    let h = (wbyte(base + 16u + e % 32u) >> (e / 32u)) & 1u;
    let q = select(b & 15u, b >> 4u, ((e / 32u) & 1u) == 1u) | (h << 4u);
    let dm = wf16x2(base); // blocks of a multiple of 4 bytes
    let dl = dm.x * f32(sm.x);
    let ml = dm.y * f32(sm.y);
    return dl * f32(q) - ml;
}
