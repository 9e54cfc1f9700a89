package tensor

import (
	"fmt"
	"math"
)

// Shape lists dimensions outermost first (row-major), as PyTorch and
// safetensors do. A ggml tensor with ne = [ne0, ne1] has Shape{ne1, ne0}.
type Shape []int

// Numel returns the number of elements, or -1 if a dimension is negative or
// the product overflows.
func (s Shape) Numel() int64 {
	n := int64(1)
	for _, d := range s {
		if d < 0 {
			return -1
		}
		if d != 0 && n > math.MaxInt64/int64(d) {
			return -1
		}
		n *= int64(d)
	}
	return n
}

// Equal reports whether two shapes have the same dimensions.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy of s.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

func (s Shape) String() string {
	out := "["
	for i, d := range s {
		if i > 0 {
			out += " "
		}
		out += fmt.Sprint(d)
	}
	return out + "]"
}

// Tensor is a named host tensor with raw little-endian storage.
type Tensor struct {
	Name  string
	DType DType
	Shape Shape
	Data  []byte
}

// New returns a Tensor after checking that data has exactly the size that
// dtype and shape require.
func New(name string, dt DType, shape Shape, data []byte) (*Tensor, error) {
	t := &Tensor{Name: name, DType: dt, Shape: shape, Data: data}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// FromFloat32 returns an F32 tensor holding a copy of values.
func FromFloat32(name string, shape Shape, values []float32) (*Tensor, error) {
	if shape.Numel() != int64(len(values)) {
		return nil, fmt.Errorf("tensor %q: shape %v needs %d values, have %d", name, shape, shape.Numel(), len(values))
	}
	data := make([]byte, 4*len(values))
	PutFloat32s(data, values)
	return &Tensor{Name: name, DType: F32, Shape: shape.Clone(), Data: data}, nil
}

// Validate checks that the storage size matches dtype and shape. For the
// ggml quantized types the innermost dimension must be a whole number of
// blocks, because ggml quantizes row by row; NF4, like bitsandbytes,
// quantizes the flattened tensor, and its header must agree with the shape.
func (t *Tensor) Validate() error {
	n := t.Shape.Numel()
	if n < 0 {
		return fmt.Errorf("tensor %q: invalid shape %v", t.Name, t.Shape)
	}
	if t.DType == NF4 {
		got, _, err := nf4Header(t.Data)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if got != n {
			return fmt.Errorf("tensor %q: NF4 data holds %d elements, shape %v has %d", t.Name, got, t.Shape, n)
		}
		return nil
	}
	if t.DType.Quantized() && len(t.Shape) > 0 && t.Shape[len(t.Shape)-1]%t.DType.BlockElems() != 0 {
		return fmt.Errorf("tensor %q: %v rows of %d are not a whole number of %d-element blocks", t.Name, t.DType, t.Shape[len(t.Shape)-1], t.DType.BlockElems())
	}
	want, err := t.DType.Bytes(n)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if int64(len(t.Data)) != want {
		return fmt.Errorf("tensor %q: %v %v needs %d bytes, have %d", t.Name, t.DType, t.Shape, want, len(t.Data))
	}
	return nil
}

// Numel returns the number of elements.
func (t *Tensor) Numel() int64 { return t.Shape.Numel() }

// Rows returns the product of all but the innermost dimension and the
// innermost dimension; a 1-D tensor is one row.
func (t *Tensor) Rows() (rows, cols int) {
	if len(t.Shape) == 0 {
		return 1, 1
	}
	cols = t.Shape[len(t.Shape)-1]
	if cols == 0 {
		return 0, 0
	}
	return int(t.Numel()) / cols, cols
}

// Float32s converts the whole tensor to float32. Use it for small tensors and
// tests; large weights should be converted row by row with DecodeRow.
func (t *Tensor) Float32s() ([]float32, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	out := make([]float32, t.Numel())
	if err := Decode(t.DType, t.Data, out); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return out, nil
}
