// First pass of the attention backward, one workgroup of 64 threads per
// (batch, head, query row): the row's log-sum-exp, D = sum_j P_j dP_j with
// dP_j = dy . v_j, saved in stats for the second pass, and when dq is
// present dq += scale * sum_j P_j (dP_j - D) k_j.
// A sliding window (W > 0) limits the row to its last W keys.
// args: B, SeqQ, SeqK, stride, H, KVH, D, scale, qoff, koff, voff, dyoff, hasdq, dqoff, W
@group(0) @binding(1) var<storage, read_write> dq: array<f32>;
@group(0) @binding(2) var<storage, read_write> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> q: array<f32>;
@group(0) @binding(4) var<storage, read_write> k: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;

const WG: u32 = 64u;
const CH: u32 = 256u;
var<workgroup> qs: array<f32, 256>;
var<workgroup> gs: array<f32, 256>;
var<workgroup> sc: array<f32, 256>;
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let SeqQ = argu(1u);
    let SeqK = argu(2u);
    let H = argu(4u);
    let D = argu(6u);
    let u = group_index(wid, nwg);
    if (u >= argu(0u) * H * SeqQ) {
        return;
    }
    let b = u / (H * SeqQ);
    let h = (u / SeqQ) % H;
    let i = u % SeqQ;
    let kvh = h / (H / argu(5u));
    let kCols = argu(5u) * D;
    let row = (b * SeqQ + i) * H * D + h * D;
    let kbase = argu(9u) + b * argu(3u) * kCols + kvh * D;
    let vbase = argu(10u) + b * argu(3u) * kCols + kvh * D;
    let scale = argf(7u);
    for (var d = t; d < D; d += WG) {
        qs[d] = q[argu(8u) + row + d];
        gs[d] = dy[argu(11u) + row + d];
    }
    workgroupBarrier();
    let seen = SeqK - SeqQ + i + 1u;
    let W = argu(14u);
    var lo = 0u;
    if (W > 0u && seen > W) {
        lo = seen - W;
    }
    // log-sum-exp of the scores
    var m = -3.0e38;
    var l = 0.0;
    for (var c0 = lo; c0 < seen; c0 += CH) {
        let cn = min(CH, seen - c0);
        for (var jj = t; jj < cn; jj += WG) {
            let ko = kbase + (c0 + jj) * kCols;
            var s = 0.0;
            for (var d = 0u; d < D; d++) {
                s += qs[d] * k[ko + d];
            }
            sc[jj] = s * scale;
        }
        workgroupBarrier();
        var cm = m;
        for (var jj = 0u; jj < cn; jj++) {
            cm = max(cm, sc[jj]);
        }
        l *= exp(m - cm);
        for (var jj = 0u; jj < cn; jj++) {
            l += exp(sc[jj] - cm);
        }
        m = cm;
        workgroupBarrier();
    }
    let lse = m + log(l);
    // D = sum_j P_j dP_j
    var part = 0.0;
    for (var j = lo + t; j < seen; j += WG) {
        let ko = kbase + j * kCols;
        let vo = vbase + j * kCols;
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < D; d++) {
            s += qs[d] * k[ko + d];
            dp += gs[d] * v[vo + d];
        }
        part += exp(s * scale - lse) * dp;
    }
    red[t] = part;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    let dd = red[0];
    if (t == 0u) {
        stats[2u * u] = lse;
        stats[2u * u + 1u] = dd;
    }
    if (argu(12u) == 0u) {
        return;
    }
    var acc: array<f32, 4>;
    for (var c0 = lo; c0 < seen; c0 += CH) {
        let cn = min(CH, seen - c0);
        for (var jj = t; jj < cn; jj += WG) {
            let ko = kbase + (c0 + jj) * kCols;
            let vo = vbase + (c0 + jj) * kCols;
            var s = 0.0;
            var dp = 0.0;
            for (var d = 0u; d < D; d++) {
                s += qs[d] * k[ko + d];
                dp += gs[d] * v[vo + d];
            }
            sc[jj] = exp(s * scale - lse) * (dp - dd);
        }
        workgroupBarrier();
        for (var jj = 0u; jj < cn; jj++) {
            let ko = kbase + (c0 + jj) * kCols;
            for (var r = 0u; r < 4u; r++) {
                let d = t + WG * r;
                if (d < D) {
                    acc[r] += sc[jj] * k[ko + d];
                }
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 4u; r++) {
        let d = t + WG * r;
        if (d < D) {
            dq[argu(13u) + row + d] += scale * acc[r];
        }
    }
}
