package randgguf_test

import (
	"math"
	"testing"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// llamaCppActivations is a LinearHook that rounds a projection's input as
// llama.cpp's CPU kernels do before multiplying it by a quantized weight
// (ggml's vec_dot_type): to Q8_0 blocks of 32 for Q4_0/Q5_0/Q8_0 weights
// (Q8_1, the same values, for Q4_1/Q5_1; IQ4_NL too), to Q8_K blocks of
// 256 for the K-quants and IQ4_XS, to F16 for F16 weights. With it graft computes what llama.cpp
// computes, so a quantized file can be held to the same 1e-3 as an F32
// one: what remains is float summation order.
type llamaCppActivations struct{ t *testing.T }

func (h llamaCppActivations) Forward(b backend.Backend, l *model.Linear, dst, x backend.Buffer) {
	vals := make([]float32, x.Shape().Numel())
	if err := b.Read(x, 0, vals); err != nil {
		h.t.Fatal(err)
	}
	for r := 0; r+l.In <= len(vals); r += l.In {
		roundLikeLlamaCpp(vals[r:r+l.In], l.Weight.DType())
	}
	tmp := b.Zeros(x.Shape()...)
	defer b.Free(tmp)
	if err := b.Write(tmp, 0, vals); err != nil {
		h.t.Fatal(err)
	}
	l.Base(b, dst, tmp)
}

func (h llamaCppActivations) Backward(backend.Backend, *model.Linear, backend.Buffer, backend.Buffer, backend.Buffer) {
	h.t.Fatal("llamaCppActivations is for inference")
}

// roundLikeLlamaCpp rounds one row of activations in place for a weight of
// type dt.
func roundLikeLlamaCpp(row []float32, dt tensor.DType) {
	switch dt {
	case tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q8_0, tensor.IQ4_NL:
		// ggml's x86 quantize_row_q8_0: d = amax/127 stored as f16, q =
		// round-half-even(x * 127/amax).
		for b := 0; b+32 <= len(row); b += 32 {
			blk := row[b : b+32]
			var amax float32
			for _, v := range blk {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			d := tensor.F16ToF32(tensor.F32ToF16(amax / 127))
			var id float32
			if amax != 0 {
				id = 127 / amax
			}
			for j, v := range blk {
				blk[j] = d * float32(math.RoundToEven(float64(v*id)))
			}
		}
	case tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.IQ4_XS:
		// quantize_row_q8_K_ref: iscale = -127/max (max: the value of
		// largest magnitude, signed), q = min(127, nearest(iscale*x)),
		// d = 1/iscale as float32.
		for b := 0; b+256 <= len(row); b += 256 {
			blk := row[b : b+256]
			var amax, mx float32
			for _, v := range blk {
				if a := float32(math.Abs(float64(v))); a > amax {
					amax, mx = a, v
				}
			}
			if amax == 0 {
				continue
			}
			iscale := -127 / mx
			d := 1 / iscale
			for j, v := range blk {
				blk[j] = d * float32(min(127, math.RoundToEven(float64(iscale*v))))
			}
		}
	case tensor.F16:
		for j, v := range row {
			row[j] = tensor.F16ToF32(tensor.F32ToF16(v))
		}
	}
}

// roundActivationsLikeLlamaCpp installs llamaCppActivations on every
// projection of m and its output head.
func roundActivationsLikeLlamaCpp(t *testing.T, m *model.Model) {
	for _, l := range m.Linears() {
		l.AddHook(llamaCppActivations{t})
	}
	m.Output.AddHook(llamaCppActivations{t})
}
