// ggml Q4_K: super-blocks of 256 elements in 144 bytes: f16 d, f16 dmin,
// 12 bytes of packed 6-bit scales and mins (one pair per 32 elements),
// 128 bytes of nibbles: element e is nibble (e/32)%2 of byte
// 32*(e/64) + e%32. The value is d*scale*q - dmin*min.
//!include weight_bytes
//!include weight_kscale
fn wload(i: u32) -> f32 {
    let base = (i / 256u) * 144u;
    let e = i % 256u;
    let sm = kscale(base + 4u, e / 32u);
    let b = wbyte(base + 16u + 32u * (e / 64u) + e % 32u);
    let q = select(b & 15u, b >> 4u, ((e / 32u) & 1u) == 1u);
    let dm = wf16x2(base); // blocks of a multiple of 4 bytes
    let dl = dm.x * f32(sm.x);
    let ml = dm.y * f32(sm.y);
    return dl * f32(q) - ml;
}
