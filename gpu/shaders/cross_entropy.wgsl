// Per row r of logits: loss[r] = w[r] * (logsumexp - logits[r, t[r]]) and,
// when present, dl[r] = scale * w[r] * (softmax - onehot(t[r])); rows of
// weight 0 have loss 0 and a zero gradient. dl may be logits itself: every
// element is read before it is overwritten by the same thread.
// loss[lossoff + r] takes row r, so parts of logits share one loss buffer.
// args: rows, vocab, loff, hasdl, dloff, scale, lossoff, targets[rows], weights[rows]
@group(0) @binding(1) var<storage, read_write> dl: array<f32>;
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
    let rows = argu(0u);
    let r = group_index(wid, nwg);
    if (r >= rows) {
        return;
    }
    let vocab = argu(1u);
    let lo = argu(2u) + r * vocab;
    let hasdl = argu(3u) == 1u;
    let dlo = argu(4u) + r * vocab;
    let w = argf(7u + rows + r);
    let lr = argu(6u) + r;
    if (w == 0.0) {
        if (hasdl) {
            for (var j = t; j < vocab; j += 256u) {
                dl[dlo + j] = 0.0;
            }
        }
        if (t == 0u) {
            loss[lr] = 0.0;
        }
        return;
    }
    let tgt = argu(7u + r);
    var m = -3.0e38;
    for (var j = t; j < vocab; j += 256u) {
        m = max(m, logits[lo + j]);
    }
    red[t] = m;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] = max(red[t], red[t + s]);
        }
        workgroupBarrier();
    }
    m = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var j = t; j < vocab; j += 256u) {
        sum += exp(logits[lo + j] - m);
    }
    red[t] = sum;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (t < s) {
            red[t] += red[t + s];
        }
        workgroupBarrier();
    }
    let lse = m + log(red[0]);
    let xt = logits[lo + tgt];
    // Everyone has read logits[tgt] before anyone may overwrite it.
    workgroupBarrier();
    if (t == 0u) {
        loss[lr] = w * (lse - xt);
    }
    if (hasdl) {
        let g = argf(5u) * w;
        for (var j = t; j < vocab; j += 256u) {
            var v = g * exp(logits[lo + j] - lse);
            if (j == tgt) {
                v -= g;
            }
            dl[dlo + j] = v;
        }
    }
}
