// NF4 as the gpu backend stores it: word 0 is the word index where the
// per-block float32 scales start, words 1..16 the code book, then the
// codes, two a byte, the first element of a pair in the high nibble.
fn wbyte(o: u32) -> u32 { return (wt[17u + (o >> 2u)] >> ((o & 3u) * 8u)) & 0xffu; }
fn wload(i: u32) -> f32 {
    let b = wbyte(i >> 1u);
    let q = select(b & 15u, b >> 4u, (i & 1u) == 0u);
    return bitcast<f32>(wt[1u + q]) * bitcast<f32>(wt[wt[0] + i / 64u]);
}
