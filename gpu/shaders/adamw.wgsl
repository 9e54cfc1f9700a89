// One AdamW step, PyTorch's formulation (see backend.AdamW). With rescale
// set, the gradient is first scaled by gscale and stored so (a Scale of
// it folded in: gpu/pending.go), the product rounded as Scale rounds it.
// args: n, poff, goff, moff, voff, decay, stepsize, bc2sqrt, b1, b2, 1-b1, 1-b2, eps, gscale, rescale
@group(0) @binding(1) var<storage, read_write> p: array<f32>;
@group(0) @binding(2) var<storage, read_write> gr: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * 256u + lid;
    if (i >= argu(0u)) {
        return;
    }
    var g = gr[argu(2u) + i];
    if (argu(14u) != 0u) {
        g = argf(13u) * g;
        gr[argu(2u) + i] = g;
    }
    let mi = argf(8u) * m[argu(3u) + i] + argf(10u) * g;
    let vi = argf(9u) * v[argu(4u) + i] + argf(11u) * g * g;
    m[argu(3u) + i] = mi;
    v[argu(4u) + i] = vi;
    let denom = sqrt(vi) / argf(7u) + argf(12u);
    let po = argu(1u) + i;
    p[po] = p[po] * argf(5u) - argf(6u) * mi / denom;
}
