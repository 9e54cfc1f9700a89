// Causal attention, one workgroup of 64 threads per (batch, head, query
// row). Keys are visited in chunks of 256: the threads score a chunk into
// workgroup memory, then each thread folds the chunk into its four output
// dimensions with an online softmax (running maximum m and sum l).
// A sliding window (W > 0) starts the keys at the row's last W.
// args: B, SeqQ, SeqK, stride, H, KVH, D, scale, doff, qoff, koff, voff, W
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> k: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

const WG: u32 = 64u;
const CH: u32 = 256u;
var<workgroup> qs: array<f32, 256>;
var<workgroup> sc: array<f32, 256>;

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
    let qo = argu(9u) + (b * SeqQ + i) * H * D + h * D;
    let kbase = argu(10u) + b * argu(3u) * kCols + kvh * D;
    let vbase = argu(11u) + b * argu(3u) * kCols + kvh * D;
    let scale = argf(7u);
    for (var d = t; d < D; d += WG) {
        qs[d] = q[qo + d];
    }
    workgroupBarrier();
    let seen = SeqK - SeqQ + i + 1u;
    let W = argu(12u);
    var lo = 0u;
    if (W > 0u && seen > W) {
        lo = seen - W;
    }
    var m = -3.0e38;
    var l = 0.0;
    // Zeroed explicitly: WGSL zero-initializes a var, but the SPIR-V
    // gogpu emits for one carried no initializer (seen in a decompile),
    // which a driver may leave undefined.
    var acc: array<f32, 4> = array<f32, 4>();
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
        let f = exp(m - cm);
        l *= f;
        for (var r = 0u; r < 4u; r++) {
            acc[r] *= f;
        }
        for (var jj = 0u; jj < cn; jj++) {
            let p = exp(sc[jj] - cm);
            l += p;
            let vo = vbase + (c0 + jj) * kCols;
            for (var r = 0u; r < 4u; r++) {
                let d = t + WG * r;
                if (d < D) {
                    acc[r] += p * v[vo + d];
                }
            }
        }
        m = cm;
        workgroupBarrier();
    }
    let dout = argu(8u) + (b * SeqQ + i) * H * D + h * D;
    for (var r = 0u; r < 4u; r++) {
        let d = t + WG * r;
        if (d < D) {
            dst[dout + d] = acc[r] / l;
        }
    }
}
