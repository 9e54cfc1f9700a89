// Sums of squares of up to six buffers in one dispatch: a training step
// asks for the norm of every adapter tensor at once, and a dispatch per
// tensor cost one each. Slot s (x0..x5) covers the workgroups
// [first_s, first_{s+1}); its workgroup g writes
// partial[at_s + g] = sum of squares of x_s[off_s + g*chunk ..][:chunk].
// A dispatch's slots are in order of first; unused ones bind a dummy and
// own no workgroup.
// args: chunk, slots, then per slot: n, off, at, first
@group(0) @binding(1) var<storage, read_write> x0: array<f32>;
@group(0) @binding(2) var<storage, read_write> x1: array<f32>;
@group(0) @binding(3) var<storage, read_write> x2: array<f32>;
@group(0) @binding(4) var<storage, read_write> x3: array<f32>;
@group(0) @binding(5) var<storage, read_write> x4: array<f32>;
@group(0) @binding(6) var<storage, read_write> x5: array<f32>;
@group(0) @binding(7) var<storage, read_write> partial: array<f32>;

var<workgroup> red: array<f32, 256>;

// load reads element i of slot s's buffer; s is the same for the whole
// workgroup.
fn load(s: u32, i: u32) -> f32 {
    switch s {
        case 0u: { return x0[i]; }
        case 1u: { return x1[i]; }
        case 2u: { return x2[i]; }
        case 3u: { return x3[i]; }
        case 4u: { return x4[i]; }
        default: { return x5[i]; }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let wg = group_index(wid, nwg);
    let chunk = argu(0u);
    let slots = argu(1u);
    var s = 0u;
    for (var i = 1u; i < slots; i++) {
        if (wg >= argu(2u + 4u * i + 3u)) {
            s = i;
        }
    }
    let base = 2u + 4u * s;
    let n = argu(base);
    let g = wg - argu(base + 3u);
    if (g * chunk >= n) {
        return;
    }
    let end = min(n, (g + 1u) * chunk);
    var acc = 0.0;
    for (var i = g * chunk + t; i < end; i += 256u) {
        let v = load(s, argu(base + 1u) + i);
        acc += v * v;
    }
    red[t] = acc;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k >>= 1u) {
        if (t < k) {
            red[t] += red[t + k];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        partial[argu(base + 2u) + g] = red[0];
    }
}
