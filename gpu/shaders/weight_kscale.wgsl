// kscale returns the 6-bit scale (x) and min (y) of sub-block j (of 32
// elements) of a Q4_K or Q5_K super-block whose 12 scale bytes start at
// byte s (ggml's get_scale_min_k4): sub-blocks 0-3 are the low six bits
// of bytes j and j+4, sub-blocks 4-7 a nibble of bytes 8-11 plus the top
// two bits of bytes j-4 and j.
fn kscale(s: u32, j: u32) -> vec2<u32> {
    if (j < 4u) {
        return vec2<u32>(wbyte(s + j) & 63u, wbyte(s + j + 4u) & 63u);
    }
    let b = wbyte(s + j + 4u);
    return vec2<u32>((b & 15u) | ((wbyte(s + j - 4u) >> 6u) << 4u), (b >> 4u) | ((wbyte(s + j) >> 6u) << 4u));
}
