// ggml Q6_K: super-blocks of 256 elements in 210 bytes (so blocks start
// at any even byte): 128 bytes of low nibbles, 64 bytes of high 2-bit
// pairs, 16 int8 scales (one per 16 elements), f16 d. In each half of 128
// elements, quarter k (32 elements, l = e%32) takes the low (k < 2) or
// high nibble of low byte l + 32*(k%2) and bits 2k of high byte l; its
// scale is int8 l/16 + 2k. The value is d*scale*(q - 32).
//!include weight_bytes
fn wload(i: u32) -> f32 {
    let base = (i / 256u) * 210u;
    let e = i % 256u;
    let n = e / 128u;
    let k = (e % 128u) / 32u;
    let l = e % 32u;
    let b = wbyte(base + 64u * n + l + 32u * (k & 1u));
    let h = (wbyte(base + 128u + 32u * n + l) >> (2u * k)) & 3u;
    let q = i32(select(b & 15u, b >> 4u, k >= 2u) | (h << 4u)) - 32;
    let s = wi8(base + 192u + 8u * n + l / 16u + 2u * k);
    return wf16(base + 208u) * f32(s) * f32(q);
}
