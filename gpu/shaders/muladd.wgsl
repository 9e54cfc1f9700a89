// x = x * m, then dst = dst + x: a LoRA input gradient masked by dropout
// and added into the layer's, a pending in-place Mul folded into the Add
// after it (gpu/pending.go). The product is stored and added as the two
// operations would round it.
// args: n, doff, xoff, moff
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * 256u + lid;
    if (i >= argu(0u)) {
        return;
    }
    let xm = x[argu(2u) + i] * m[argu(3u) + i];
    x[argu(2u) + i] = xm;
    dst[argu(1u) + i] = dst[argu(1u) + i] + xm;
}
