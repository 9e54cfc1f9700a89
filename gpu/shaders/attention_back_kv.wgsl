// Second pass of the attention backward, by blocks of key rows: one
// workgroup of 64 threads per (batch, key/value head, block of 64 key
// rows), one thread per key row j. Each thread walks the query rows that
// see its key, of every head sharing this key head, rebuilds P from their
// saved log-sum-exp and D (first pass), and adds dv_j += P dy and
// dk_j += scale * P (dP - D) q. Every dk and dv row has one owner, so no
// two threads add into one element.
//
// The threads of a block walk the same query rows in step, so on a GPU
// their reads of q, dy and stats are the same addresses at the same time,
// served once to the whole warp by the cache. The rows are not staged in
// workgroup memory behind barriers: lavapipe runs a kernel with barriers
// as LLVM coroutines, and LLVM 15 took 384 s (2 cores) to split a first
// version of this kernel that loaded tiles of q and dy between two
// barriers, before its first dispatch could run; this one compiles in
// well under a second.
// A sliding window (W > 0) limits key j to the W query rows that end at it.
// hasdk, hasdv: 0 none, 1 add into it, 2 write it (a zeroing folded in).
// args: B, SeqQ, SeqK, stride, H, KVH, D, scale, qoff, koff, voff, dyoff, hasdk, dkoff, hasdv, dvoff, W
@group(0) @binding(1) var<storage, read_write> dk: array<f32>;
@group(0) @binding(2) var<storage, read_write> dv: array<f32>;
@group(0) @binding(3) var<storage, read_write> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read_write> k: array<f32>;
@group(0) @binding(6) var<storage, read_write> v: array<f32>;
@group(0) @binding(7) var<storage, read_write> stats: array<f32>;

const BKV: u32 = 64u;
const MAXD: u32 = 256u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let SeqQ = argu(1u);
    let SeqK = argu(2u);
    let H = argu(4u);
    let KVH = argu(5u);
    let D = argu(6u);
    let W = argu(16u);
    let blocks = (SeqK + BKV - 1u) / BKV;
    let u = group_index(wid, nwg);
    let j = (u % blocks) * BKV + t;
    if (u >= argu(0u) * KVH * blocks || j >= SeqK) {
        return;
    }
    let b = u / (KVH * blocks);
    let kvh = (u / blocks) % KVH;
    let scale = argf(7u);
    let offset = SeqK - SeqQ;
    let krow = (b * argu(3u) + j) * KVH * D + kvh * D;
    var kr: array<f32, MAXD>;
    var vr: array<f32, MAXD>;
    for (var d = 0u; d < D; d++) {
        kr[d] = k[argu(9u) + krow + d];
        vr[d] = v[argu(10u) + krow + d];
    }
    // Key j is seen by query rows [ia, iz): those with offset + i >= j,
    // and with a window only those with offset + i < j + W.
    var ia = 0u;
    if (j > offset) {
        ia = j - offset;
    }
    var iz = SeqQ;
    if (W > 0u) {
        iz = 0u;
        if (j + W > offset) {
            iz = min(SeqQ, j + W - offset);
        }
    }
    // Zeroed explicitly: WGSL zero-initializes a var, but the SPIR-V
    // gogpu emits for one carried no initializer (seen in a decompile),
    // which a driver may leave undefined.
    var dka: array<f32, MAXD> = array<f32, MAXD>();
    var dva: array<f32, MAXD> = array<f32, MAXD>();
    let group = H / KVH;
    for (var hh = 0u; hh < group; hh++) {
        let h = kvh * group + hh;
        for (var i = ia; i < iz; i++) {
            let row = (b * SeqQ + i) * H * D + h * D;
            let qo = argu(8u) + row;
            let go = argu(11u) + row;
            var s = 0.0;
            var dp = 0.0;
            for (var d = 0u; d < D; d++) {
                s += q[qo + d] * kr[d];
                dp += dy[go + d] * vr[d];
            }
            let r = (b * H + h) * SeqQ + i;
            let p = exp(s * scale - stats[2u * r]);
            let ds = p * (dp - stats[2u * r + 1u]);
            for (var d = 0u; d < D; d++) {
                dva[d] += p * dy[go + d];
                dka[d] += ds * q[qo + d];
            }
        }
    }
    if (argu(12u) != 0u) {
        for (var d = 0u; d < D; d++) {
            let o = argu(13u) + krow + d;
            var prior = 0.0;
            if (argu(12u) == 1u) {
                prior = dk[o];
            }
            dk[o] = prior + scale * dka[d];
        }
    }
    if (argu(14u) != 0u) {
        for (var d = 0u; d < D; d++) {
            let o = argu(15u) + krow + d;
            var prior = 0.0;
            if (argu(14u) == 1u) {
                prior = dv[o];
            }
            dv[o] = prior + dva[d];
        }
    }
}
