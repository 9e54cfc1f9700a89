// dw[c] += sum over rows of dy[r, c] * x[r, c] * inv[r], a thread a column.
// args: rows, cols, dwoff, dyoff, xoff
@group(0) @binding(1) var<storage, read_write> dw: array<f32>;
@group(0) @binding(2) var<storage, read_write> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> inv: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = group_index(wid, nwg) * 256u + lid;
    let cols = argu(1u);
    if (c >= cols) {
        return;
    }
    var acc = 0.0;
    for (var r = 0u; r < argu(0u); r++) {
        acc += dy[argu(3u) + r * cols + c] * x[argu(4u) + r * cols + c] * inv[r];
    }
    dw[argu(2u) + c] += acc;
}
