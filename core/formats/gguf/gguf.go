// Package gguf reads and writes GGUF files, the container llama.cpp and ggml
// use for models and LoRA adapters.
//
// The reader understands GGUF versions 1, 2 and 3 (little-endian only).
// Parse decodes the header (metadata and tensor descriptions) through an
// io.ReaderAt and validates it against the real size of the file before
// allocating anything a corrupt header claims; tensor data is read later, one
// tensor at a time, by ReadTensor. Write produces GGUF version 3.
//
// Shapes are exposed row-major, outermost dimension first, like every other
// part of graft: ggml lists the fastest-varying dimension first (ne), so a
// tensor with ne = [64, 512] has Shape{512, 64}.
package gguf

import (
	"io"

	"github.com/graft-ml/graft/core/tensor"
)

// Magic is the four bytes every GGUF file starts with.
const Magic = "GGUF"

// DefaultAlignment is the alignment of tensor data when a file does not set
// general.alignment.
const DefaultAlignment = 32

// KeyAlignment is the metadata key that sets the alignment of tensor data.
const KeyAlignment = "general.alignment"

// KeyArchitecture is the metadata key naming the model architecture
// ("llama", ...); architecture-specific keys are prefixed with it.
const KeyArchitecture = "general.architecture"

// maxDims is ggml's GGML_MAX_DIMS: no ggml tensor has more dimensions.
const maxDims = 4

// maxArrayDepth bounds how deeply metadata arrays may nest, so a hostile file
// cannot drive the decoder into unbounded recursion.
const maxArrayDepth = 8

// File is a parsed GGUF header. Tensor data stays in the underlying reader
// until ReadTensor asks for it.
type File struct {
	// Name identifies the file in error messages (the path for Open).
	Name string
	// Version is the GGUF version, 1 to 3.
	Version uint32
	// KVs is the metadata in file order.
	KVs []KV
	// Tensors describes the tensors in file order.
	Tensors []TensorInfo
	// Alignment is the alignment of the data section and of each tensor.
	Alignment int
	// DataOffset is the absolute offset of the data section.
	DataOffset int64
	// Size is the size of the file in bytes.
	Size int64

	r        io.ReaderAt
	closer   io.Closer
	kvIndex  map[string]int
	tenIndex map[string]int
}

// KV is one metadata entry. Value holds a Go value of the matching type:
// uint8, int8, uint16, int16, uint32, int32, uint64, int64, float32,
// float64, bool or string for scalars; a typed slice ([]uint8 ... []float64,
// []bool, []string) for an array; and []any whose elements are such slices
// (or further []any) for an array of arrays.
type KV struct {
	Key   string
	Value any
}

// TensorInfo describes one tensor of a GGUF file.
type TensorInfo struct {
	Name string
	// Shape is row-major: the reverse of ggml's ne.
	Shape tensor.Shape
	// GGMLType is the raw ggml type id; see GGMLTypeName.
	GGMLType uint32
	// DType is the matching graft type, or tensor.Invalid when graft cannot
	// decode this ggml type (K-quants, Q4_1, ...).
	DType tensor.DType
	// Offset is the absolute file offset of the tensor's data.
	Offset int64
	// Size is the size of the tensor's data in bytes.
	Size int64
}

// Close releases the file opened by Open. It does nothing for a File made
// by Parse, whose reader belongs to the caller.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	c := f.closer
	f.closer, f.r = nil, nil
	return c.Close()
}
