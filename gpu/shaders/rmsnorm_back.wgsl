// dx += r*g - x * r^3 * sum(g*x) / cols with g = dy*w and r = 1/rms(x),
// one workgroup a row; r is kept in inv for the weight gradient.
// args: rows, cols, dxoff, dyoff, xoff, hasw, woff, eps
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read_write> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> wt: array<u32>;
@group(0) @binding(5) var<storage, read_write> inv: array<f32>;
//!weight

var<workgroup> red: array<f32, 256>;
var<workgroup> red2: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r = group_index(wid, nwg);
    if (r >= argu(0u)) {
        return;
    }
    let cols = argu(1u);
    let hasw = argu(5u) == 1u;
    let xo = argu(4u) + r * cols;
    let yo = argu(3u) + r * cols;
    var ss = 0.0;
    var gx = 0.0;
    for (var j = t; j < cols; j += 256u) {
        let v = x[xo + j];
        var gj = dy[yo + j];
        if (hasw) {
            gj *= wload(argu(6u) + j);
        }
        ss += v * v;
        gx += gj * v;
    }
    red[t] = ss;
    red2[t] = gx;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] += red[t + s];
            red2[t] += red2[t + s];
        }
        workgroupBarrier();
    }
    let rs = inverseSqrt(red[0] / f32(cols) + argf(7u));
    let k = rs * rs * rs * red2[0] / f32(cols);
    let dxo = argu(2u) + r * cols;
    for (var j = t; j < cols; j += 256u) {
        var gj = dy[yo + j];
        if (hasw) {
            gj *= wload(argu(6u) + j);
        }
        dx[dxo + j] += rs * gj - x[xo + j] * k;
    }
    if (t == 0u) {
        inv[r] = rs;
    }
}
