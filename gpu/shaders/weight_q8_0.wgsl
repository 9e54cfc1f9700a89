// ggml Q8_0: blocks of 32 elements in 34 bytes, an f16 scale then 32 int8.
//!include weight_bytes
fn wload(i: u32) -> f32 {
    let base = (i / 32u) * 34u;
    return wf16(base) * f32(wi8(base + 2u + i % 32u));
}
