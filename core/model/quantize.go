package model

import (
	"fmt"

	"github.com/graft-ml/graft/core/tensor"
)

// QuantizeNF4 turns the model into a QLoRA base: the weight of every decoder
// projection (q, k, v, o, gate, up and down of each block) is replaced by
// its NF4 quantization, bit-compatible with bitsandbytes' Linear4bit
// (blocks of 64 over the row-major [Out, In] weight; with doubleQuant the
// block scales are themselves quantized to 8 bits, as
// bnb_4bit_use_double_quant does). The token embedding, the norms and the
// output head stay as they are, as bitsandbytes leaves lm_head alone by
// default. Biases stay F32.
//
// Only float weights (F32, F16, BF16) are converted. A projection that is
// already block-quantized, by a GGUF file's ggml type (Q4_K, Q8_0, ...) or
// as NF4, is left as it is: training runs directly on it, since every
// backend computes on those weights without dequantizing them whole, and
// re-quantizing would only lose precision (QuantizedLinears tells callers
// which types stayed). Weights are converted one at a time: read from the
// backend, quantized on the host, uploaded, and the old buffer freed, so
// the extra memory at any moment is one weight in float32 plus its NF4
// form. Linear.SourceDType keeps the file's type, which saving writes.
// Call it before attaching adapters: a merged adapter's F32 copy would be
// quantized with the base.
//
// On error the model stays usable: the weights converted so far are NF4,
// the rest keep their old type, and WeightDTypes counts them as they are.
func QuantizeNF4(m *Model, doubleQuant bool) error {
	b := m.Backend
	for _, lin := range m.Linears() {
		old := lin.Weight
		if old.DType().Quantized() {
			continue
		}
		shape := tensor.Shape{lin.Out, lin.In}
		n := shape.Numel()
		if got := old.Shape().Numel(); got != n {
			return fmt.Errorf("quantize NF4: %s: weight has %d elements, [%d %d] expected", lin.Name, got, lin.Out, lin.In)
		}
		vals := make([]float32, n)
		if err := b.Read(old, 0, vals); err != nil {
			return fmt.Errorf("quantize NF4: reading %s: %w", lin.Name, err)
		}
		t, err := tensor.New(lin.Name+".weight", tensor.NF4, shape, tensor.QuantizeNF4(vals, doubleQuant).Bytes())
		if err != nil {
			return fmt.Errorf("quantize NF4: %s: %w", lin.Name, err)
		}
		buf, err := b.Load(t)
		if err != nil {
			return fmt.Errorf("quantize NF4: uploading %s: %w", lin.Name, err)
		}
		lin.Weight = buf
		b.Free(old)
		if m.WeightDTypes == nil {
			m.WeightDTypes = map[string]int{}
		}
		if k := old.DType().String(); m.WeightDTypes[k] > 1 {
			m.WeightDTypes[k]--
		} else {
			delete(m.WeightDTypes, k)
		}
		m.WeightDTypes[tensor.NF4.String()]++
	}
	return nil
}

// QuantizedLinears counts the decoder projections (the weights QuantizeNF4
// would convert) whose weights are already block-quantized, by type name:
// {"Q4_K": 12, "Q6_K": 2} for a Q4_K_M file. It is empty for a float base.
func QuantizedLinears(m *Model) map[string]int {
	out := map[string]int{}
	for _, lin := range m.Linears() {
		if dt := lin.Weight.DType(); dt.Quantized() && dt != tensor.NF4 {
			out[dt.String()]++
		}
	}
	return out
}
