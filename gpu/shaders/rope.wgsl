// Rotates pair i of every head of row r by sign * pos[r] * freq[i], one
// thread a (row, head, pair). Frequencies arrive in turns per position, so
// the angle is reduced to [0, 1) turn before sin and cos.
// The PAIR variant rotates a second buffer y at the same positions in the
// same dispatch (a layer's q and k, see gpu/pending.go): its threads
// follow x's, over y's ycols columns from yoff.
// args: rows, cols, xoff, headdim, half, style, sign, turns[half], pos[rows], (PAIR: ycols, yoff)
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
//!if PAIR
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
//!end

const TAU: f32 = 6.283185307179586;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    var u = group_index(wid, nwg) * 256u + lid;
    let rows = argu(0u);
    var cols = argu(1u);
    var off = argu(2u);
    let hd = argu(3u);
    let half = argu(4u);
    var second = false;
//!if PAIR
    let first = rows * (cols / hd) * half;
    if (u >= first) {
        u -= first;
        cols = argu(7u + half + rows);
        off = argu(8u + half + rows);
        second = true;
    }
//!end
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
    let base = off + r * cols + h * hd;
    var lo = base + i;
    var hi = base + i + half;
    if (argu(5u) == 0u) {
        lo = base + 2u * i;
        hi = lo + 1u;
    }
//!if PAIR
    if (second) {
        let a = y[lo];
        let b = y[hi];
        y[lo] = a * c - b * s;
        y[hi] = a * s + b * c;
        return;
    }
//!end
    let a = x[lo];
    let b = x[hi];
    x[lo] = a * c - b * s;
    x[hi] = a * s + b * c;
}
