// Rotates pair i of every head of row r by sign * pos[r] * freq[i], one
// thread a (row, head, pair). Frequencies arrive in turns per position, so
// the angle is reduced to [0, 1) turn before sin and cos.
// args: rows, cols, xoff, headdim, half, style, sign, turns[half], pos[rows]
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

const TAU: f32 = 6.283185307179586;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let u = group_index(wid, nwg) * 256u + lid;
    let rows = argu(0u);
    let cols = argu(1u);
    let hd = argu(3u);
    let half = argu(4u);
    let heads = cols / hd;
    if (u >= rows * heads * half) {
        return;
    }
    let i = u % half;
    let h = (u / half) % heads;
    let r = u / (half * heads);
    let turns = f32(argi(7u + half + r)) * argf(7u + i);
    let angle = (turns - floor(turns)) * TAU;
    let c = cos(angle);
    let s = argf(6u) * sin(angle);
    let base = argu(2u) + r * cols + h * hd;
    var lo = base + i;
    var hi = base + i + half;
    if (argu(5u) == 0u) {
        lo = base + 2u * i;
        hi = lo + 1u;
    }
    let a = x[lo];
    let b = x[hi];
    x[lo] = a * c - b * s;
    x[hi] = a * s + b * c;
}
