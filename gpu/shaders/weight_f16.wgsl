// Two halves a word, the first in the low 16 bits.
fn wload(i: u32) -> f32 {
    let word = wt[i >> 1u];
    return unpack2x16float(select(word, word >> 16u, (i & 1u) == 1u)).x;
}
