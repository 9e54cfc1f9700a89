// dst = x / sqrt(mean(x^2) + eps) * w, one workgroup a row.
// args: rows, cols, doff, xoff, hasw, woff, eps
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> wt: array<u32>;
//!weight

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r = group_index(wid, nwg);
    if (r >= argu(0u)) {
        return;
    }
    let cols = argu(1u);
    let xo = argu(3u) + r * cols;
    var ss = 0.0;
    for (var j = t; j < cols; j += 256u) {
        let v = x[xo + j];
        ss += v * v;
    }
    red[t] = ss;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    let inv = inverseSqrt(red[0] / f32(cols) + argf(6u));
    let hasw = argu(4u) == 1u;
    let dout = argu(2u) + r * cols;
    for (var j = t; j < cols; j += 256u) {
        var v = x[xo + j] * inv;
        if (hasw) {
            v *= wload(argu(5u) + j);
        }
        dst[dout + j] = v;
    }
}
