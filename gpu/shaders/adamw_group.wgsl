// AdamW steps of up to 7 tensors in one dispatch, PyTorch's formulation
// (see backend.AdamW and adamw.wgsl, whose arithmetic this repeats): the
// trainer steps every adapter tensor with the same factors one after the
// other, a dispatch each before (gpu/pending.go). Slot s binds p, g, m
// and v of one tensor as p<s>, g<s>, m<s>, v<s> and owns the workgroups
// [first_s, first_{s+1}); unused slots bind dummies and own none. With
// rescale set a slot's gradient is first scaled by gscale and stored so
// (the trainer's clipping, folded in).
// The kernel needs 1 + 4 * 7 storage bindings; the backend uses it only
// on an adapter that has them.
// args: slots, stepsize, bc2sqrt, b1, b2, 1-b1, 1-b2, eps,
//   then per slot: n, poff, goff, moff, voff, first, decay, gscale, rescale
@group(0) @binding(1) var<storage, read_write> p0: array<f32>;
@group(0) @binding(2) var<storage, read_write> g0: array<f32>;
@group(0) @binding(3) var<storage, read_write> m0: array<f32>;
@group(0) @binding(4) var<storage, read_write> v0: array<f32>;
@group(0) @binding(5) var<storage, read_write> p1: array<f32>;
@group(0) @binding(6) var<storage, read_write> g1: array<f32>;
@group(0) @binding(7) var<storage, read_write> m1: array<f32>;
@group(0) @binding(8) var<storage, read_write> v1: array<f32>;
@group(0) @binding(9) var<storage, read_write> p2: array<f32>;
@group(0) @binding(10) var<storage, read_write> g2: array<f32>;
@group(0) @binding(11) var<storage, read_write> m2: array<f32>;
@group(0) @binding(12) var<storage, read_write> v2: array<f32>;
@group(0) @binding(13) var<storage, read_write> p3: array<f32>;
@group(0) @binding(14) var<storage, read_write> g3: array<f32>;
@group(0) @binding(15) var<storage, read_write> m3: array<f32>;
@group(0) @binding(16) var<storage, read_write> v3: array<f32>;
@group(0) @binding(17) var<storage, read_write> p4: array<f32>;
@group(0) @binding(18) var<storage, read_write> g4: array<f32>;
@group(0) @binding(19) var<storage, read_write> m4: array<f32>;
@group(0) @binding(20) var<storage, read_write> v4: array<f32>;
@group(0) @binding(21) var<storage, read_write> p5: array<f32>;
@group(0) @binding(22) var<storage, read_write> g5: array<f32>;
@group(0) @binding(23) var<storage, read_write> m5: array<f32>;
@group(0) @binding(24) var<storage, read_write> v5: array<f32>;
@group(0) @binding(25) var<storage, read_write> p6: array<f32>;
@group(0) @binding(26) var<storage, read_write> g6: array<f32>;
@group(0) @binding(27) var<storage, read_write> m6: array<f32>;
@group(0) @binding(28) var<storage, read_write> v6: array<f32>;

fn ld_p(s: u32, i: u32) -> f32 {
    switch s {
        case 0u: { return p0[i]; }
        case 1u: { return p1[i]; }
        case 2u: { return p2[i]; }
        case 3u: { return p3[i]; }
        case 4u: { return p4[i]; }
        case 5u: { return p5[i]; }
        default: { return p6[i]; }
    }
}

fn st_p(s: u32, i: u32, x: f32) {
    switch s {
        case 0u: { p0[i] = x; }
        case 1u: { p1[i] = x; }
        case 2u: { p2[i] = x; }
        case 3u: { p3[i] = x; }
        case 4u: { p4[i] = x; }
        case 5u: { p5[i] = x; }
        default: { p6[i] = x; }
    }
}

fn ld_g(s: u32, i: u32) -> f32 {
    switch s {
        case 0u: { return g0[i]; }
        case 1u: { return g1[i]; }
        case 2u: { return g2[i]; }
        case 3u: { return g3[i]; }
        case 4u: { return g4[i]; }
        case 5u: { return g5[i]; }
        default: { return g6[i]; }
    }
}

fn st_g(s: u32, i: u32, x: f32) {
    switch s {
        case 0u: { g0[i] = x; }
        case 1u: { g1[i] = x; }
        case 2u: { g2[i] = x; }
        case 3u: { g3[i] = x; }
        case 4u: { g4[i] = x; }
        case 5u: { g5[i] = x; }
        default: { g6[i] = x; }
    }
}

fn ld_m(s: u32, i: u32) -> f32 {
    switch s {
        case 0u: { return m0[i]; }
        case 1u: { return m1[i]; }
        case 2u: { return m2[i]; }
        case 3u: { return m3[i]; }
        case 4u: { return m4[i]; }
        case 5u: { return m5[i]; }
        default: { return m6[i]; }
    }
}

fn st_m(s: u32, i: u32, x: f32) {
    switch s {
        case 0u: { m0[i] = x; }
        case 1u: { m1[i] = x; }
        case 2u: { m2[i] = x; }
        case 3u: { m3[i] = x; }
        case 4u: { m4[i] = x; }
        case 5u: { m5[i] = x; }
        default: { m6[i] = x; }
    }
}

fn ld_v(s: u32, i: u32) -> f32 {
    switch s {
        case 0u: { return v0[i]; }
        case 1u: { return v1[i]; }
        case 2u: { return v2[i]; }
        case 3u: { return v3[i]; }
        case 4u: { return v4[i]; }
        case 5u: { return v5[i]; }
        default: { return v6[i]; }
    }
}

fn st_v(s: u32, i: u32, x: f32) {
    switch s {
        case 0u: { v0[i] = x; }
        case 1u: { v1[i] = x; }
        case 2u: { v2[i] = x; }
        case 3u: { v3[i] = x; }
        case 4u: { v4[i] = x; }
        case 5u: { v5[i] = x; }
        default: { v6[i] = x; }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let wg = group_index(wid, nwg);
    var s = 0u;
    for (var j = 1u; j < argu(0u); j++) {
        if (wg >= argu(8u + 9u * j + 5u)) {
            s = j;
        }
    }
    let at = 8u + 9u * s;
    let i = (wg - argu(at + 5u)) * 256u + lid;
    if (i >= argu(at)) {
        return;
    }
    var g = ld_g(s, argu(at + 2u) + i);
    if (argu(at + 8u) != 0u) {
        g = argf(at + 7u) * g;
        st_g(s, argu(at + 2u) + i, g);
    }
    let mi = argf(3u) * ld_m(s, argu(at + 3u) + i) + argf(5u) * g;
    let vi = argf(4u) * ld_v(s, argu(at + 4u) + i) + argf(6u) * g * g;
    st_m(s, argu(at + 3u) + i, mi);
    st_v(s, argu(at + 4u) + i, vi);
    let denom = sqrt(vi) / argf(2u) + argf(7u);
    let po = argu(at + 1u) + i;
    st_p(s, po, ld_p(s, po) * argf(at + 6u) - argf(1u) * mi / denom);
}
