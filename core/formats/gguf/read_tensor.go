package gguf

import (
	"fmt"
	"io"

	"github.com/graft-ml/graft/core/tensor"
)

// ReadTensor reads one tensor's data with a single ReadAt. It fails for
// ggml types that graft cannot decode (see TensorInfo.DType). A quantized
// tensor whose rows split blocks (see TensorInfo.RowsSplitBlocks) comes back
// dequantized to F32, because graft's quantized tensors are whole blocks per
// row.
func (f *File) ReadTensor(name string) (*tensor.Tensor, error) {
	ti, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf %s: no tensor %q", f.Name, name)
	}
	if ti.DType == tensor.Invalid {
		return nil, fmt.Errorf("gguf %s: tensor %q: ggml type %s is not supported by graft", f.Name, name, GGMLTypeName(ti.GGMLType))
	}
	if f.r == nil {
		return nil, fmt.Errorf("gguf %s: tensor %q: file is closed or has no reader", f.Name, name)
	}
	data := make([]byte, ti.Size)
	n, err := f.r.ReadAt(data, ti.Offset)
	if n < len(data) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("gguf %s: tensor %q: reading %d bytes at offset %d: %w", f.Name, name, ti.Size, ti.Offset, err)
	}
	if ti.RowsSplitBlocks() {
		return dequantizeFlat(f.Name, ti, data)
	}
	t, err := tensor.New(ti.Name, ti.DType, ti.Shape.Clone(), data)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", f.Name, err)
	}
	return t, nil
}

func dequantizeFlat(file string, ti *TensorInfo, data []byte) (*tensor.Tensor, error) {
	values := make([]float32, ti.Shape.Numel())
	if err := tensor.Decode(ti.DType, data, values); err != nil {
		return nil, fmt.Errorf("gguf %s: tensor %q: %w", file, ti.Name, err)
	}
	t, err := tensor.FromFloat32(ti.Name, ti.Shape, values)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: %w", file, err)
	}
	return t, nil
}
