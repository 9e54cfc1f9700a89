// Each row of dst = softmax(row of x * invtemp), a workgroup a row; dst may
// be x.  args: rows, cols, doff, xoff, invtemp
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let r = group_index(wid, nwg);
    if (r >= argu(0u)) {
        return;
    }
    let cols = argu(1u);
    let xo = argu(3u) + r * cols;
    let it = argf(4u);
    var m = -3.0e38;
    for (var j = t; j < cols; j += 256u) {
        m = max(m, x[xo + j] * it);
    }
    red[t] = m;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] = max(red[t], red[t + s]);
        }
        workgroupBarrier();
    }
    m = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var j = t; j < cols; j += 256u) {
        sum += exp(x[xo + j] * it - m);
    }
    red[t] = sum;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / red[0];
    let dout = argu(2u) + r * cols;
    for (var j = t; j < cols; j += 256u) {
        dst[dout + j] = exp(x[xo + j] * it - m) * inv;
    }
}
