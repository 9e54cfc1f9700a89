// dst[r, c] = table[ids[r], c] for the ids in [lo, hi), the rows of the
// table part bound, whose row lo is at toff.
// args: nids, dim, doff, toff, lo, hi, ids...
@group(0) @binding(1) var<storage, read_write> wt: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
//!weight

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * 256u + lid;
    let dim = argu(1u);
    if (i >= argu(0u) * dim) {
        return;
    }
    let r = i / dim;
    let c = i % dim;
    let id = argu(6u + r);
    if (id >= argu(4u) && id < argu(5u)) {
        dst[argu(2u) + i] = wload(argu(3u) + (id - argu(4u)) * dim + c);
    }
}
