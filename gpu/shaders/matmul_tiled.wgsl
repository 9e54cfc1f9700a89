// dst[M, N] (+)= alpha * op(a)[M, K] * op(w)[K, N], register-tiled.
// Each workgroup computes a BM x BN tile of dst; each of its
// (BM/TM) x (BN/TN) invocations keeps a TM x TN block of it in registers
// (TM, TN are 4 or 8), walking K in steps of BK through two workgroup
// tiles stored k-major as vec4s, so the inner loop reads one vec4 of op(a)
// and one of op(w) per 4 products each. An invocation's rows are the
// vec4 row groups ty, ty + BM/TM, ... (its columns likewise), so that
// neighbouring invocations read neighbouring shared words.
// The host (matmul.go) sets the constants BM, BN, BK, TM, TN and one flag
// per pipeline for how w is bound: WF32, an F32 weight as vec4s like a;
// WF16, an F16 weight (f16 storage, f32 arithmetic, no ShaderF16 needed)
// as pairs of words, four halves; WS, any dtype as words read one element
// at a time through its decoder, wload. Every buffer's size is a multiple
// of 16 bytes (encodedBytes), so all of a and of w are reachable through
// those bindings. The args avec and wvec say whether the stored rows of a
// (of an F32 or F16 w) start at multiples of 4 elements and the runs
// loaded along them (K, or M or N for a transposed operand) are multiples
// of 4: then the tiles are loaded four elements at a time, else one at a
// time.
// The operands may be blocks of larger matrices: ldd, lda and ldb are the
// row lengths of dst, a and w as stored.
// args: M, N, K, doff, aoff, woff, transA, transB, accumulate, alpha, ldd, lda, ldb, avec, wvec
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read_write> a: array<vec4<f32>>;
//!if WF32
@group(0) @binding(3) var<storage, read_write> wt: array<vec4<f32>>;
fn wload(i: u32) -> f32 { return wt[i >> 2u][i & 3u]; }
fn wload4(q: u32) -> vec4<f32> { return wt[q]; }
//!end
//!if WF16
@group(0) @binding(3) var<storage, read_write> wt: array<vec2<u32>>;
fn wload(i: u32) -> f32 {
    let p = wt[i >> 2u];
    return unpack2x16float(select(p.x, p.y, (i & 2u) != 0u))[i & 1u];
}
fn wload4(q: u32) -> vec4<f32> {
    let p = wt[q];
    return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
}
//!end
//!if WS
@group(0) @binding(3) var<storage, read_write> wt: array<u32>;
//!weight
//!end

const RT: u32 = BM / TM; // invocations along M
const CT: u32 = BN / TN; // invocations along N
const WG: u32 = RT * CT;
var<workgroup> as_: array<vec4<f32>, BK * BM / 4u>; // [BK][BM/4]
var<workgroup> bs_: array<vec4<f32>, BK * BN / 4u>; // [BK][BN/4]

fn aload(i: u32) -> f32 { return a[i >> 2u][i & 3u]; }

// put stores element (k, m) of a tile laid out [BK][B*/4].
fn puta(k: u32, m: u32, v: f32) { as_[k * (BM / 4u) + m / 4u][m % 4u] = v; }
fn putb(k: u32, n: u32, v: f32) { bs_[k * (BN / 4u) + n / 4u][n % 4u] = v; }

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let M = argu(0u);
    let N = argu(1u);
    let K = argu(2u);
    let aoff = argu(4u);
    let woff = argu(5u);
    let transA = argu(6u) == 1u;
    let transB = argu(7u) == 1u;
    let lda = argu(11u);
    let ldb = argu(12u);
    let avec = argu(13u) == 1u;
    let wvec = argu(14u) == 1u;
    let tilesN = (N + BN - 1u) / BN;
    let g = group_index(wid, nwg);
    if (g >= tilesN * ((M + BM - 1u) / BM)) {
        return;
    }
    let row0 = (g / tilesN) * BM;
    let col0 = (g % tilesN) * BN;
    let ty = t / CT;
    let tx = t % CT;
    // Zeroed explicitly: WGSL zero-initializes a var, but the SPIR-V
    // gogpu emits for one carried no initializer (seen in a decompile),
    // which a driver may leave undefined.
    var acc: array<vec4<f32>, TM * TN / 4u> = array<vec4<f32>, TM * TN / 4u>();
    for (var k0 = 0u; k0 < K; k0 += BK) {
        // The tile of op(a), element (m, k) of op(a). Every loop below
        // starts at t, so the compiler cannot unroll it: one copy of the
        // loads (and of a weight decoder) per kernel, which keeps
        // llvmpipe's lowering of the barriers quick.
        if (avec) {
            // Four elements a load, along the stored rows: k when a is M x K,
            // m when it is stored K x M.
            for (var e = t; e < BM * BK / 4u; e += WG) {
                if (transA) {
                    let k = e / (BM / 4u);
                    let m4 = e % (BM / 4u);
                    var v = vec4<f32>();
                    if (k0 + k < K && row0 + 4u * m4 < M) {
                        v = a[(aoff + (k0 + k) * lda + row0 + 4u * m4) / 4u];
                    }
                    as_[k * (BM / 4u) + m4] = v;
                } else {
                    let m = e / (BK / 4u);
                    let k4 = e % (BK / 4u);
                    var v = vec4<f32>();
                    if (row0 + m < M && k0 + 4u * k4 < K) {
                        v = a[(aoff + (row0 + m) * lda + k0 + 4u * k4) / 4u];
                    }
                    for (var c = 0u; c < 4u; c++) {
                        puta(4u * k4 + c, m, v[c]);
                    }
                }
            }
        } else {
            for (var e = t; e < BM * BK; e += WG) {
                // consecutive invocations read consecutive stored elements
                var m = e / BK;
                var k = e % BK;
                if (transA) {
                    m = e % BM;
                    k = e / BM;
                }
                var v = 0.0;
                if (row0 + m < M && k0 + k < K) {
                    v = aload(aoff + select((row0 + m) * lda + k0 + k, (k0 + k) * lda + row0 + m, transA));
                }
                puta(k, m, v);
            }
        }
        // The tile of op(w), element (k, n) of op(w).
        if (wvec) {
//!if WS
            // no vector loads for a weight read through its decoder
//!else
            for (var e = t; e < BK * BN / 4u; e += WG) {
                if (transB) {
                    let n = e / (BK / 4u);
                    let k4 = e % (BK / 4u);
                    var v = vec4<f32>();
                    if (col0 + n < N && k0 + 4u * k4 < K) {
                        v = wload4((woff + (col0 + n) * ldb + k0 + 4u * k4) / 4u);
                    }
                    for (var c = 0u; c < 4u; c++) {
                        putb(4u * k4 + c, n, v[c]);
                    }
                } else {
                    let k = e / (BN / 4u);
                    let n4 = e % (BN / 4u);
                    var v = vec4<f32>();
                    if (k0 + k < K && col0 + 4u * n4 < N) {
                        v = wload4((woff + (k0 + k) * ldb + col0 + 4u * n4) / 4u);
                    }
                    bs_[k * (BN / 4u) + n4] = v;
                }
            }
//!end
        } else {
            for (var e = t; e < BK * BN; e += WG) {
                var k = e / BN;
                var n = e % BN;
                if (transB) {
                    k = e % BK;
                    n = e / BK;
                }
                var v = 0.0;
                if (k0 + k < K && col0 + n < N) {
                    v = wload(woff + select((k0 + k) * ldb + col0 + n, (col0 + n) * ldb + k0 + k, transB));
                }
                putb(k, n, v);
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var av: array<vec4<f32>, TM / 4u>;
            var bv: array<vec4<f32>, TN / 4u>;
            for (var h = 0u; h < TM / 4u; h++) {
                av[h] = as_[kk * (BM / 4u) + ty + h * RT];
            }
            for (var h = 0u; h < TN / 4u; h++) {
                bv[h] = bs_[kk * (BN / 4u) + tx + h * CT];
            }
            for (var i = 0u; i < TM; i++) {
                let x = av[i / 4u][i % 4u];
                for (var h = 0u; h < TN / 4u; h++) {
                    acc[i * (TN / 4u) + h] = fma(vec4<f32>(x), bv[h], acc[i * (TN / 4u) + h]);
                }
            }
        }
        workgroupBarrier();
    }
    let alpha = argf(9u);
    let accumulate = argu(8u) == 1u;
    let doff = argu(3u);
    let ldd = argu(10u);
    for (var i = 0u; i < TM; i++) {
        let r = row0 + 4u * (ty + (i / 4u) * RT) + i % 4u;
        if (r >= M) {
            continue;
        }
        for (var h = 0u; h < TN / 4u; h++) {
            let v = alpha * acc[i * (TN / 4u) + h];
            let c0 = col0 + 4u * (tx + h * CT);
            for (var c = 0u; c < 4u; c++) {
                if (c0 + c < N) {
                    let o = doff + r * ldd + c0 + c;
                    var y = v[c];
                    if (accumulate) {
                        y += dst[o];
                    }
                    dst[o] = y;
                }
            }
        }
    }
}
