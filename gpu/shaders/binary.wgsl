// dst = a (op) b, op 0: add, 1: multiply. b is indexed by mode 0: element,
// 1: column (a row vector of cols values), 2: row (a column of values).
// base is the index in a of the dispatch's first element, for broadcasting
// when a is walked in parts.
// args: n, cols, doff, aoff, boff, op, mode, base
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> b: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * 256u + lid;
    if (i >= argu(0u)) {
        return;
    }
    let cols = argu(1u);
    var j = i;
    switch argu(6u) {
        case 1u: { j = (argu(7u) + i) % cols; }
        case 2u: { j = (argu(7u) + i) / cols; }
        default: {}
    }
    let x = a[argu(3u) + i];
    let y = b[argu(4u) + j];
    dst[argu(2u) + i] = select(x + y, x * y, argu(5u) == 1u);
}
