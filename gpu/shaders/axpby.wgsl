// dst = c*dst + s*x, where c = 0 does not read dst (it may hold anything).
// args: n, doff, xoff, c, s
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * 256u + lid;
    if (i >= argu(0u)) {
        return;
    }
    let c = argf(3u);
    var v = argf(4u) * x[argu(2u) + i];
    if (c != 0.0) {
        v += c * dst[argu(1u) + i];
    }
    dst[argu(1u) + i] = v;
}
