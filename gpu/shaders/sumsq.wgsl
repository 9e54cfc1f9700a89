// partial[at + g] = sum of squares of x[off + g*chunk ..][:chunk].
// args: n, off, at, chunk
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let g = group_index(wid, nwg);
    let n = argu(0u);
    let chunk = argu(3u);
    if (g * chunk >= n) {
        return;
    }
    let end = min(n, (g + 1u) * chunk);
    var s = 0.0;
    for (var i = g * chunk + t; i < end; i += 256u) {
        let v = x[argu(1u) + i];
        s += v * v;
    }
    red[t] = s;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k >>= 1u) {
        if (t < k) {
            red[t] += red[t + k];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        partial[argu(2u) + g] = red[0];
    }
}
