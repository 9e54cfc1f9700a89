// Second pass of the attention backward, one workgroup of 64 threads per
// (batch, key/value head, key row j): over every query row of every head
// sharing this key head that sees key j, rebuild P from the saved
// log-sum-exp and add dv += P dy and dk += scale * P (dP - D) q.
// A sliding window (W > 0) limits the query rows to the W that end at j.
// args: B, SeqQ, SeqK, stride, H, KVH, D, scale, qoff, koff, voff, dyoff, hasdk, dkoff, hasdv, dvoff, W
@group(0) @binding(1) var<storage, read_write> dk: array<f32>;
@group(0) @binding(2) var<storage, read_write> dv: array<f32>;
@group(0) @binding(3) var<storage, read_write> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> k: array<f32>;
@group(0) @binding(6) var<storage, read_write> v: array<f32>;
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;

const WG: u32 = 64u;
const CH: u32 = 256u;
var<workgroup> ks: array<f32, 256>;
var<workgroup> vs: array<f32, 256>;
var<workgroup> pp_: array<f32, 256>;
var<workgroup> ps_: array<f32, 256>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let SeqQ = argu(1u);
    let SeqK = argu(2u);
    let H = argu(4u);
    let KVH = argu(5u);
    let D = argu(6u);
    let u = group_index(wid, nwg);
    if (u >= argu(0u) * KVH * SeqK) {
        return;
    }
    let b = u / (KVH * SeqK);
    let kvh = (u / SeqK) % KVH;
    let j = u % SeqK;
    let kCols = KVH * D;
    let krow = (b * argu(3u) + j) * kCols + kvh * D;
    let scale = argf(7u);
    for (var d = t; d < D; d += WG) {
        ks[d] = k[argu(9u) + krow + d];
        vs[d] = v[argu(10u) + krow + d];
    }
    workgroupBarrier();
    let offset = SeqK - SeqQ;
    var i0 = 0u;
    if (j > offset) {
        i0 = j - offset;
    }
    // Rows i0.. see key j; with a window only those with i < j - offset + W.
    var i1 = SeqQ;
    let W = argu(16u);
    if (W > 0u) {
        if (j + W > offset) {
            i1 = min(SeqQ, j + W - offset);
        } else {
            i1 = 0u;
        }
    }
    var cnt = 0u;
    if (i1 > i0) {
        cnt = i1 - i0;
    }
    let group = H / KVH;
    let total = group * cnt;
    var dka: array<f32, 4>;
    var dva: array<f32, 4>;
    for (var c0 = 0u; c0 < total; c0 += CH) {
        let cn = min(CH, total - c0);
        for (var pp = t; pp < cn; pp += WG) {
            let p = c0 + pp;
            let h = kvh * group + p / cnt;
            let i = i0 + p % cnt;
            let row = (b * SeqQ + i) * H * D + h * D;
            let r = (b * H + h) * SeqQ + i;
            var s = 0.0;
            var dp = 0.0;
            for (var d = 0u; d < D; d++) {
                s += q[argu(8u) + row + d] * ks[d];
                dp += dy[argu(11u) + row + d] * vs[d];
            }
            let pr = exp(s * scale - stats[2u * r]);
            pp_[pp] = pr;
            ps_[pp] = pr * (dp - stats[2u * r + 1u]);
        }
        workgroupBarrier();
        for (var pp = 0u; pp < cn; pp++) {
            let p = c0 + pp;
            let h = kvh * group + p / cnt;
            let i = i0 + p % cnt;
            let row = (b * SeqQ + i) * H * D + h * D;
            for (var r = 0u; r < 4u; r++) {
                let d = t + WG * r;
                if (d < D) {
                    dva[r] += pp_[pp] * dy[argu(11u) + row + d];
                    dka[r] += ps_[pp] * q[argu(8u) + row + d];
                }
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r++) {
        let d = t + WG * r;
        if (d < D) {
            if (argu(12u) == 1u) {
                dk[argu(13u) + krow + d] += scale * dka[r];
            }
            if (argu(14u) == 1u) {
                dv[argu(15u) + krow + d] += dva[r];
            }
        }
    }
}
