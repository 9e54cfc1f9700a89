// dtable[ids[r], c] += dy[r, c], one thread per column c walking the ids in
// order, for the ids in [lo, hi), the rows of the table part bound, whose
// row lo is at toff.  args: nids, dim, toff, yoff, lo, hi, ids...
@group(0) @binding(1) var<storage, read_write> dtable: array<f32>;
@group(0) @binding(2) var<storage, read_write> dy: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = group_index(wid, nwg) * 256u + lid;
    let dim = argu(1u);
    if (c >= dim) {
        return;
    }
    let n = argu(0u);
    for (var r = 0u; r < n; r++) {
        let id = argu(6u + r);
        if (id >= argu(4u) && id < argu(5u)) {
            dtable[argu(2u) + (id - argu(4u)) * dim + c] += dy[argu(3u) + r * dim + c];
        }
    }
}
