// ggml Q8_0: blocks of 32 elements in 34 bytes, an f16 scale then 32 int8.
fn wbyte(o: u32) -> u32 { return (wt[o >> 2u] >> ((o & 3u) * 8u)) & 0xffu; }
fn wload(i: u32) -> f32 {
    let base = (i / 32u) * 34u;
    let d = unpack2x16float(wbyte(base) | (wbyte(base + 1u) << 8u)).x;
    let q = bitcast<i32>(wbyte(base + 2u + i % 32u) << 24u) >> 24u;
    return d * f32(q);
}
