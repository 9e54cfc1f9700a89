// dst[M, N] (+)= alpha * op(a)[M, K] * op(w)[K, N]. Each workgroup computes
// a 64x64 tile of dst, each of its 256 threads a 4x4 block, walking K in
// steps of 16 through workgroup memory. w may be any weight dtype.
// The operands may be blocks of larger matrices: ldd, lda and ldb are the
// row lengths of dst, a and w as stored.
// args: M, N, K, doff, aoff, woff, transA, transB, accumulate, alpha, ldd, lda, ldb
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read_write> wt: array<u32>;
//!weight

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> as_: array<f32, 1024>; // [TM][TK]
var<workgroup> bs_: array<f32, 1024>; // [TK][TN]

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let M = argu(0u);
    let N = argu(1u);
    let K = argu(2u);
    let transA = argu(6u) == 1u;
    let transB = argu(7u) == 1u;
    let lda = argu(11u);
    let ldb = argu(12u);
    let tilesN = (N + TN - 1u) / TN;
    let g = group_index(wid, nwg);
    if (g >= tilesN * ((M + TM - 1u) / TM)) {
        return;
    }
    let row0 = (g / tilesN) * TM;
    let col0 = (g % tilesN) * TN;
    let ty = t / 16u;
    let tx = t % 16u;
    // Zeroed explicitly: WGSL zero-initializes a var, but the SPIR-V
    // gogpu emits for one carried no initializer (seen in a decompile),
    // which a driver may leave undefined.
    var acc: array<f32, 16> = array<f32, 16>();
    for (var k0 = 0u; k0 < K; k0 += TK) {
        for (var r = 0u; r < 4u; r++) {
            let e = t + 256u * r;
            // a tile: element (m, k) of op(a)
            let m = row0 + e / TK;
            let ka = k0 + e % TK;
            var va = 0.0;
            if (m < M && ka < K) {
                va = a[argu(4u) + select(m * lda + ka, ka * lda + m, transA)];
            }
            as_[e] = va;
        }
        // w tile: element (k, n) of op(w). A loop whose trip count the
        // compiler cannot know (it starts at t) keeps one copy of the
        // weight decoder: unrolled four times, a K-quant decoder makes
        // llvmpipe's coroutine lowering of the barriers take minutes.
        for (var e = t; e < TK * TN; e += 256u) {
            let kb = k0 + e / TN;
            let n = col0 + e % TN;
            var vb = 0.0;
            if (kb < K && n < N) {
                vb = wload(argu(5u) + select(kb * ldb + n, n * ldb + kb, transB));
            }
            bs_[e] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            var bv: array<f32, 4>;
            for (var j = 0u; j < 4u; j++) {
                bv[j] = bs_[kk * TN + tx + 16u * j];
            }
            for (var i = 0u; i < 4u; i++) {
                let av = as_[(ty + 16u * i) * TK + kk];
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] += av * bv[j];
                }
            }
        }
        workgroupBarrier();
    }
    let alpha = argf(9u);
    let accumulate = argu(8u) == 1u;
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + ty + 16u * i;
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + tx + 16u * j;
            if (r < M && c < N) {
                let o = argu(3u) + r * argu(10u) + c;
                var v = alpha * acc[i * 4u + j];
                if (accumulate) {
                    v += dst[o];
                }
                dst[o] = v;
            }
        }
    }
}
