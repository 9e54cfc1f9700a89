// dst = gelu(gate) * up, GELU's tanh form.  args: n, doff, goff, uoff
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read_write> gate: array<f32>;
@group(0) @binding(3) var<storage, read_write> up: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * 256u + lid;
    if (i >= argu(0u)) {
        return;
    }
    let x = gate[argu(2u) + i];
    // tanh saturates long before 15; clamping keeps exp-based tanh
    // implementations from overflowing to NaN.
    let t = tanh(clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0));
    dst[argu(1u) + i] = 0.5 * x * (1.0 + t) * up[argu(3u) + i];
}
