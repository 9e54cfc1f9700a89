// ggml Q3_K: super-blocks of 256 elements in 110 bytes: a 32-byte high-bit
// mask, 64 bytes of 2-bit quants (laid out as in Q2_K), 12 bytes of
// 6-bit scales, f16 d. Element e's high bit is bit (e/128)*4 + (e%128)/32
// of mask byte e%32; without it the quant is lowered by 4. Scale j (one
// per 16 elements) is the nibble j/8 of byte j%8 plus, as bits 4-5, the
// pair j/4 of byte 8 + j%4, offset by 32. The value is d*(scale-32)*q.
//!include weight_bytes
fn wload(i: u32) -> f32 {
    let base = (i / 256u) * 110u;
    let e = i % 256u;
    let j = e / 16u;
    let lo = (wbyte(base + 96u + j % 8u) >> (4u * (j / 8u))) & 15u;
    let hi = (wbyte(base + 104u + j % 4u) >> (2u * (j / 4u))) & 3u;
    let s = i32(lo | (hi << 4u)) - 32;
    let group = (e % 128u) / 32u;
    var q = i32((wbyte(base + 32u + (e / 128u) * 32u + e % 32u) >> (group * 2u)) & 3u);
    if (((wbyte(base + e % 32u) >> ((e / 128u) * 4u + group)) & 1u) == 0u) {
        q -= 4;
    }
    let dl = wf16(base + 108u) * f32(s);
    return dl * f32(q);
}
