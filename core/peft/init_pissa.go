package peft

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/graft-ml/graft/core/backend"
)

// PiSSA (principal singular values and singular vectors adaptation, Meng et
// al. 2024) and OLoRA (orthonormal LoRA, Büyükakyüz 2024) start the adapter
// from the principal part of each base weight and train it, with the rest
// of the weight frozen: the base weight W becomes the residual W − s·B₀·A₀,
// so the model computes exactly what it did before training, up to
// rounding. As PEFT's pissa_init and olora_init:
//
//	pissa:          W = U·diag(S)·Vᵀ (thin SVD), S_r' = S[:r]/s,
//	                A = diag(√S_r')·Vᵀ[:r],  B = U[:, :r]·diag(√S_r')
//	pissa_niter_N:  the same from a randomized SVD (torch.svd_lowrank with
//	                q = r and N subspace iterations)
//	olora:          W = Q·R (Householder QR), A = R[:r], B = Q[:, :r]
//
// (PiSSA divides by s so that s·B·A is the rank-r truncation of W; OLoRA
// does not, so s·B·A is s times the first r components of the QR.)
//
// graft keeps the model's own weight and installs the residual as a new F32
// buffer, even for F16, BF16 or quantized weights (PEFT refuses PiSSA on
// quantized weights and re-quantizes OLoRA's residual; an F32 residual
// keeps the decomposition exact). Unload, or deleting the adapter, gives
// the original weight back. The decompositions run once per layer on the
// host in float64 (see linalg.go).
//
// An adapter trained this way applies to the residual model, not the
// original; FilesConverted turns it into a plain LoRA adapter of rank 2r
// for the original base, as PEFT's save_pretrained does with
// path_initial_model_for_weight_conversion.

// The base-modifying initialisations AddAdapter performs.
const (
	InitPiSSA LoraInit = "pissa"
	InitOLoRA LoraInit = "olora"
)

// pissaIterations returns N of "pissa_niter_N", or -1 for full-SVD "pissa".
func pissaIterations(init LoraInit) (int, error) {
	rest, ok := strings.CutPrefix(string(init), "pissa_niter_")
	if !ok {
		return -1, nil
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || n > 1000 {
		return 0, fmt.Errorf("init_lora_weights %q: the number of subspace iterations must be an integer in [0, 1000]", string(init))
	}
	return n, nil
}

// principalInit computes A, B and the residual weight of one layer for
// PiSSA or OLoRA from the layer's current base weight.
func principalInit(b backend.Backend, t target, init LoraInit, rng *rand.Rand) (layerInit, error) {
	lin := t.lin
	in, out, r := lin.In, lin.Out, t.r
	if r > min(in, out) {
		return layerInit{}, fmt.Errorf("lora: %s: init_lora_weights %q needs r = %d ≤ min(out %d, in %d)", lin.Name, string(init), r, out, in)
	}
	w32, err := readAll(b, lin.Weight)
	if err != nil {
		return layerInit{}, fmt.Errorf("lora: %s: reading the base weight: %w", lin.Name, err)
	}
	// Decompose in Hugging Face's row order: QR, unlike the SVD, depends
	// on the order of the rows, and PEFT sees the HF layout.
	if lin.RoPEPermuted > 0 {
		if w32, err = permuteRoPERows(w32, out, in, lin.RoPEPermuted, true); err != nil {
			return layerInit{}, fmt.Errorf("lora: %s: %w", lin.Name, err)
		}
	}
	w := toFloat64(w32)
	s := t.scaling
	a := make([]float64, r*in)
	bm := make([]float64, out*r)
	switch {
	case init == InitOLoRA:
		q, rr := qrHouseholder(w, out, in)
		k := min(out, in)
		copy(a, rr[:r*in])
		for o := range out {
			copy(bm[o*r:(o+1)*r], q[o*k:o*k+r])
		}
	default:
		niter, err := pissaIterations(init)
		if err != nil {
			return layerInit{}, err
		}
		var u, sv, vt []float64
		if niter < 0 {
			u, sv, vt = svdJacobi(w, out, in)
		} else {
			u, sv, vt = svdLowRank(w, out, in, r, niter, rng)
		}
		k := len(sv)
		for i := range r {
			root := math.Sqrt(sv[i] / s)
			for c := range in {
				a[i*in+c] = root * vt[i*in+c]
			}
			for o := range out {
				bm[o*r+i] = u[o*k+i] * root
			}
		}
	}
	// The residual uses A and B as float32 holds them, so that
	// residual + s·B·A reproduces W as closely as float32 allows.
	a32, b32 := toFloat32(a), toFloat32(bm)
	res := slices.Clone(w)
	for o := range out {
		row := res[o*in : (o+1)*in]
		for j := range r {
			c := s * float64(b32[o*r+j])
			for i, av := range a32[j*in : (j+1)*in] {
				row[i] -= c * float64(av)
			}
		}
	}
	res32 := toFloat32(res)
	if lin.RoPEPermuted > 0 {
		if b32, err = permuteRoPERows(b32, out, r, lin.RoPEPermuted, false); err != nil {
			return layerInit{}, err
		}
		if res32, err = permuteRoPERows(res32, out, in, lin.RoPEPermuted, false); err != nil {
			return layerInit{}, err
		}
	}
	return layerInit{a: a32, b: b32, residual: res32}, nil
}

// dropMutator undoes what adapter weights w took out of its layer's base
// weight: with no other such adapter left the model's own weight comes
// back, otherwise the residual is rebuilt from it without w's part.
func (mg *Manager) dropMutator(w *loraWeights) error {
	h := w.layer
	lin := h.lin
	rest := slices.DeleteFunc(slices.Clone(h.mutators), func(x *loraWeights) bool { return x == w })
	if len(rest) == 0 {
		mg.b.Free(lin.Weight)
		lin.Weight, h.pristine, h.mutators = h.pristine, nil, nil
		return nil
	}
	res, err := f32Copy(mg.b, h.pristine, lin.Out, lin.In)
	if err != nil {
		return err
	}
	for _, m := range rest {
		a0, err := upload(mg.b, m.init0A, m.r, lin.In)
		if err != nil {
			mg.b.Free(res)
			return err
		}
		b0, err := upload(mg.b, m.init0B, lin.Out, m.r)
		if err != nil {
			mg.b.Free(a0)
			mg.b.Free(res)
			return err
		}
		mg.b.MatMul(res, b0, a0, backend.MatMul{Accumulate: true, Alpha: -float32(m.scaling)})
		mg.b.Free(a0)
		mg.b.Free(b0)
	}
	mg.b.Free(lin.Weight)
	lin.Weight, h.mutators = res, rest
	return nil
}
