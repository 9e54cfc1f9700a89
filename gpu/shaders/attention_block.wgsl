// Causal attention by blocks of query rows (FlashAttention's forward): one
// workgroup of 64 threads per (batch, head, block of 64 query rows), one
// thread per row. The keys the block sees stream through workgroup memory
// in tiles of BK rows of k and v, loaded once for all 64 rows, and each
// thread folds a tile into its row with an online softmax (running maximum
// m and sum l), so no score matrix is ever stored. BK is chosen on the
// host so that each tile fits in 1792 floats whatever the head size (14 KiB
// for the two, under the 16 KiB of workgroup memory WebGPU guarantees).
// A sliding window (W > 0) starts each row's keys at its last W.
// args: B, SeqQ, SeqK, stride, H, KVH, D, scale, doff, qoff, koff, voff, W, BK
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> k: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

const BQ: u32 = 64u;
const MAXD: u32 = 256u;
const MAXBK: u32 = 64u;
var<workgroup> ks: array<f32, 1792>;
var<workgroup> vs: array<f32, 1792>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let SeqQ = argu(1u);
    let SeqK = argu(2u);
    let H = argu(4u);
    let D = argu(6u);
    let W = argu(12u);
    let BK = argu(13u);
    let blocks = (SeqQ + BQ - 1u) / BQ;
    let u = group_index(wid, nwg);
    if (u >= argu(0u) * H * blocks) {
        return;
    }
    let b = u / (H * blocks);
    let h = (u / blocks) % H;
    let i0 = (u % blocks) * BQ;
    let iEnd = min(SeqQ, i0 + BQ);
    let kvh = h / (H / argu(5u));
    let kCols = argu(5u) * D;
    let kbase = argu(10u) + b * argu(3u) * kCols + kvh * D;
    let vbase = argu(11u) + b * argu(3u) * kCols + kvh * D;
    let scale = argf(7u);
    let offset = SeqK - SeqQ;

    // This thread's row: the keys [lo, seen) it sees.
    let i = i0 + t;
    let valid = i < iEnd;
    let seen = offset + i + 1u;
    var lo = 0u;
    if (W > 0u && seen > W) {
        lo = seen - W;
    }
    let qo = argu(9u) + (b * SeqQ + i) * H * D + h * D;
    var qr: array<f32, MAXD>;
    // Zeroed explicitly: WGSL zero-initializes a var, but the SPIR-V
    // gogpu emits for one carried no initializer (seen in a decompile),
    // which a driver may leave undefined.
    var acc: array<f32, MAXD> = array<f32, MAXD>();
    if (valid) {
        for (var d = 0u; d < D; d++) {
            qr[d] = q[qo + d];
        }
    }
    // The keys any row of the block sees.
    let lastSeen = offset + iEnd;
    var blo = 0u;
    if (W > 0u && offset + i0 + 1u > W) {
        blo = offset + i0 + 1u - W;
    }
    var m = -3.0e38;
    var l = 0.0;
    var sc: array<f32, MAXBK>;
    for (var c0 = blo; c0 < lastSeen; c0 += BK) {
        let cn = min(BK, lastSeen - c0);
        for (var e = t; e < cn * D; e += BQ) {
            let jj = e / D;
            let d = e % D;
            ks[e] = k[kbase + (c0 + jj) * kCols + d];
            vs[e] = v[vbase + (c0 + jj) * kCols + d];
        }
        workgroupBarrier();
        // The tile's keys this row sees: [a, z) of the tile.
        let a = max(lo, c0) - c0;
        var z = 0u;
        if (valid && seen > c0) {
            z = min(seen - c0, cn);
        }
        if (a < z) {
            var cm = m;
            for (var jj = a; jj < z; jj++) {
                var s = 0.0;
                for (var d = 0u; d < D; d++) {
                    s += qr[d] * ks[jj * D + d];
                }
                s *= scale;
                sc[jj] = s;
                cm = max(cm, s);
            }
            let f = exp(m - cm);
            l *= f;
            for (var d = 0u; d < D; d++) {
                acc[d] *= f;
            }
            for (var jj = a; jj < z; jj++) {
                let p = exp(sc[jj] - cm);
                l += p;
                for (var d = 0u; d < D; d++) {
                    acc[d] += p * vs[jj * D + d];
                }
            }
            m = cm;
        }
        workgroupBarrier();
    }
    if (valid) {
        let dout = argu(8u) + (b * SeqQ + i) * H * D + h * D;
        for (var d = 0u; d < D; d++) {
            dst[dout + d] = acc[d] / l;
        }
    }
}
