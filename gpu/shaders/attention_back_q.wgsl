// First pass of the attention backward, by blocks of query rows: one
// workgroup of 64 threads per (batch, head, block of 64 query rows), one
// thread per row, like attention_block. A first sweep over the row's keys
// finds its log-sum-exp and D = sum_j P_j dP_j (dP_j = dy . v_j), both
// kept online against the running maximum, and saves them in stats for
// the second pass; when dq is present a second sweep adds
// dq += scale * sum_j P_j (dP_j - D) k_j, with P_j rebuilt from the
// log-sum-exp. No score matrix is stored.
//
// The threads of a block walk the same keys in step, so on a GPU their
// reads of k and v are the same addresses at the same time, which the
// cache serves once to the whole warp. The keys are not staged in
// workgroup memory: see attention_back_kv.wgsl for what barriers cost on
// lavapipe.
// A sliding window (W > 0) limits each row to its last W keys.
// hasdq: 0 no dq, 1 add into dq, 2 write dq (a zeroing of it folded in).
// args: B, SeqQ, SeqK, stride, H, KVH, D, scale, qoff, koff, voff, dyoff, hasdq, dqoff, W
@group(0) @binding(1) var<storage, read_write> dq: array<f32>;
@group(0) @binding(2) var<storage, read_write> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> q: array<f32>;
@group(0) @binding(4) var<storage, read_write> k: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;

const BQ: u32 = 64u;
const MAXD: u32 = 256u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let SeqQ = argu(1u);
    let SeqK = argu(2u);
    let H = argu(4u);
    let D = argu(6u);
    let W = argu(14u);
    let blocks = (SeqQ + BQ - 1u) / BQ;
    let u = group_index(wid, nwg);
    let i = (u % blocks) * BQ + t;
    if (u >= argu(0u) * H * blocks || i >= SeqQ) {
        return;
    }
    let b = u / (H * blocks);
    let h = (u / blocks) % H;
    let kvh = h / (H / argu(5u));
    let kCols = argu(5u) * D;
    let kbase = argu(9u) + b * argu(3u) * kCols + kvh * D;
    let vbase = argu(10u) + b * argu(3u) * kCols + kvh * D;
    let scale = argf(7u);
    // Row i sees keys [lo, seen).
    let seen = SeqK - SeqQ + i + 1u;
    var lo = 0u;
    if (W > 0u && seen > W) {
        lo = seen - W;
    }
    let row = (b * SeqQ + i) * H * D + h * D;
    var qr: array<f32, MAXD>;
    var gr: array<f32, MAXD>;
    for (var d = 0u; d < D; d++) {
        qr[d] = q[argu(8u) + row + d];
        gr[d] = dy[argu(11u) + row + d];
    }

    // Sweep 1: m, l and sum_j exp(s_j - m) dP_j, rescaled as m grows.
    var m = -3.0e38;
    var l = 0.0;
    var pd = 0.0;
    for (var j = lo; j < seen; j++) {
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < D; d++) {
            s += qr[d] * k[kbase + j * kCols + d];
            dp += gr[d] * v[vbase + j * kCols + d];
        }
        s *= scale;
        if (s > m) {
            let f = exp(m - s);
            l *= f;
            pd *= f;
            m = s;
        }
        let p = exp(s - m);
        l += p;
        pd += p * dp;
    }
    let lse = m + log(l);
    let dd = pd / l;
    let r = (b * H + h) * SeqQ + i;
    stats[2u * r] = lse;
    stats[2u * r + 1u] = dd;
    if (argu(12u) == 0u) {
        return;
    }

    // Sweep 2: dq, accumulated in acc and added once.
    // Zeroed explicitly: WGSL zero-initializes a var, but the SPIR-V
    // gogpu emits for one carried no initializer (seen in a decompile),
    // which a driver may leave undefined.
    var acc: array<f32, MAXD> = array<f32, MAXD>();
    for (var j = lo; j < seen; j++) {
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < D; d++) {
            s += qr[d] * k[kbase + j * kCols + d];
            dp += gr[d] * v[vbase + j * kCols + d];
        }
        let ds = exp(s * scale - lse) * (dp - dd);
        for (var d = 0u; d < D; d++) {
            acc[d] += ds * k[kbase + j * kCols + d];
        }
    }
    for (var d = 0u; d < D; d++) {
        let o = argu(13u) + row + d;
        var prior = 0.0;
        if (argu(12u) == 1u) {
            prior = dq[o];
        }
        dq[o] = prior + scale * acc[d];
    }
}
