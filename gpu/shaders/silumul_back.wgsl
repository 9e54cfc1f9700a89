// dgate = dy * up * silu'(gate), dup = dy * silu(gate), each when present.
// args: n, dyoff, goff, uoff, hasdg, dgoff, hasdu, duoff
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
    let s = 1.0 / (1.0 + exp(-x));
    if (argu(6u) == 1u) {
        dup[argu(7u) + i] = d * x * s;
    }
    if (argu(4u) == 1u) {
        dgate[argu(5u) + i] = d * u * s * (1.0 + x * (1.0 - s));
    }
}
