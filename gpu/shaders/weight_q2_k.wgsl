// ggml Q2_K: super-blocks of 256 elements in 84 bytes: 16 bytes of
// scales (a 4-bit scale and a 4-bit min per 16 elements, low nibble the
// scale), 64 bytes of 2-bit quants, f16 d, f16 dmin. Each half of 128
// elements reads 32 quant bytes four times, at shifts 0, 2, 4, 6: element
// e is bits 2*((e%128)/32) of byte (e/128)*32 + e%32. The value is
// d*scale*q - dmin*min.
//!include weight_bytes
fn wload(i: u32) -> f32 {
    let base = (i / 256u) * 84u;
    let e = i % 256u;
    let sc = wbyte(base + e / 16u);
    let q = (wbyte(base + 16u + (e / 128u) * 32u + e % 32u) >> (((e % 128u) / 32u) * 2u)) & 3u;
    let dm = wf16x2(base + 80u); // 84-byte blocks: a multiple of 4
    let dl = dm.x * f32(sc & 15u);
    let ml = dm.y * f32(sc >> 4u);
    return dl * f32(q) - ml;
}
