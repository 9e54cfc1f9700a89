// Byte-addressed reads of a ggml weight. WGSL has no u8 or f16 storage
// without extensions, so the blocks are bound as u32 words and unpacked;
// blocks of 18, 22, 34, 84, 110 or 210 bytes start at any byte of a word,
// so every field is read byte by byte, little-endian.
fn wbyte(o: u32) -> u32 { return (wt[o >> 2u] >> ((o & 3u) * 8u)) & 0xffu; }
// wf16 reads the f16 (ggml_half) at byte o, which is even: every ggml
// block has an even size and its halves sit at even offsets.
fn wf16(o: u32) -> f32 {
    let h = unpack2x16float(wt[o >> 2u]);
    return select(h.x, h.y, (o & 2u) != 0u);
}
// wf16x2 reads the two halves (d and the min's scale dmin or m) of the
// word at byte o, a multiple of 4.
fn wf16x2(o: u32) -> vec2<f32> { return unpack2x16float(wt[o >> 2u]); }
// wi8 reads the int8 at byte o.
fn wi8(o: u32) -> i32 { return bitcast<i32>(wbyte(o) << 24u) >> 24u; }
