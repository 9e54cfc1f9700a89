// out[i] = weight element off + i, dequantized.  args: off, n
@group(0) @binding(1) var<storage, read_write> wt: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
//!weight

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * 256u + lid;
    if (i < argu(1u)) {
        out[i] = wload(argu(0u) + i);
    }
}
