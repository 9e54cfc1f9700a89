// bfloat16 is the top half of a float32.
fn wload(i: u32) -> f32 {
    let word = wt[i >> 1u];
    let h = select(word & 0xffffu, word >> 16u, (i & 1u) == 1u);
    return bitcast<f32>(h << 16u);
}
