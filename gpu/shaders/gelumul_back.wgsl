// dgate = dy * up * gelu'(gate), dup = dy * gelu(gate), each when present,
// GELU's tanh form.  args: n, dyoff, goff, uoff, hasdg, dgoff, hasdu, duoff
@group(0) @binding(1) var<storage, read_write> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> gate: array<f32>;
@group(0) @binding(3) var<storage, read_write> up: array<f32>;
@group(0) @binding(4) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(5) var<storage, read_write> dup: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = group_index(wid, nwg) * 256u + lid;
    if (i >= argu(0u)) {
        return;
    }
    // Read everything first: dgate or dup may alias an input.
    let x = gate[argu(2u) + i];
    let u = up[argu(3u) + i];
    let d = dy[argu(1u) + i];
    let c = 0.7978845608028654;
    let t = tanh(clamp(c * (x + 0.044715 * x * x * x), -15.0, 15.0));
    if (argu(6u) == 1u) {
        dup[argu(7u) + i] = d * 0.5 * x * (1.0 + t);
    }
    if (argu(4u) == 1u) {
        let g = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x);
        dgate[argu(5u) + i] = d * u * g;
    }
}
