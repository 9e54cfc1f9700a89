package randgguf

import (
	"fmt"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/tensor"
)

// fileTypes are llama.cpp's general.file_type values (enum llama_ftype)
// for a file whose matrices are all of one type: the "_S" variants for
// the K-quants, the mixes without their Q6_K/Q5_K promotions.
var fileTypes = map[tensor.DType]uint32{
	tensor.Q4_0: 2, tensor.Q4_1: 3, tensor.Q8_0: 7, tensor.Q5_0: 8, tensor.Q5_1: 9,
	tensor.Q2_K: 10, tensor.Q3_K: 11, tensor.Q4_K: 14, tensor.Q5_K: 16, tensor.Q6_K: 18,
	tensor.IQ4_NL: 25, tensor.IQ4_XS: 30,
}

// Quantize re-encodes every matrix of the GGUF form (token_embd, the
// projections, the output head) as dt with graft's port of ggml's
// reference quantizers, and sets general.file_type to match. Norms and
// other vectors stay F32, as in llama.cpp's quantized files. It fails when
// a matrix's rows are not whole blocks of dt (use NewFamilySized for
// K-quants).
func (m *Model) Quantize(dt tensor.DType) error {
	ft, ok := fileTypes[dt]
	if !ok {
		return fmt.Errorf("randgguf: quantize: %v is not a ggml block type", dt)
	}
	for i, t := range m.GGUF {
		if len(t.Shape) != 2 {
			continue
		}
		vals, err := t.Float32s()
		if err != nil {
			return fmt.Errorf("randgguf: quantize: %w", err)
		}
		if t.Shape[1]%dt.BlockElems() != 0 {
			return fmt.Errorf("randgguf: quantize: tensor %q: rows of %d are not whole %v blocks of %d", t.Name, t.Shape[1], dt, dt.BlockElems())
		}
		size, err := dt.Bytes(int64(len(vals)))
		if err != nil {
			return fmt.Errorf("randgguf: quantize: tensor %q: %w", t.Name, err)
		}
		data := make([]byte, size)
		if err := tensor.Encode(dt, vals, data); err != nil {
			return fmt.Errorf("randgguf: quantize: tensor %q: %w", t.Name, err)
		}
		if m.GGUF[i], err = tensor.New(t.Name, dt, t.Shape.Clone(), data); err != nil {
			return fmt.Errorf("randgguf: quantize: %w", err)
		}
	}
	for i, kv := range m.KVs {
		if kv.Key == "general.file_type" {
			m.KVs[i] = gguf.KV{Key: kv.Key, Value: ft}
		}
	}
	return nil
}
