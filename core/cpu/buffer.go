package cpu

import (
	"errors"
	"fmt"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// storage is the memory behind a buffer and all views of it.
type storage struct {
	f32   []float32       // F32 buffers
	raw   []byte          // weights kept in their file dtype, row-major
	nf4   *tensor.NF4Data // NF4 weights: codes and block scales
	freed bool
	// recycle marks an f32 array that Zeros allocated, which Free hands
	// to the backend's recycler (no other storage's array is the
	// backend's to reuse: Foreign memory and the host kernels' views
	// belong to a plugin guest).
	recycle bool
}

// buffer is the CPU implementation of backend.Buffer. An F32 buffer is the
// element range [off, off+n) of its storage; views share the storage.
type buffer struct {
	owner *Backend
	st    *storage
	dtype tensor.DType
	shape tensor.Shape
	off   int
	n     int
	view  bool // made by View: freeing it leaves the storage alone
	freed bool // set by Free on this buffer
}

func (b *buffer) DType() tensor.DType { return b.dtype }

// Shape returns a copy of the buffer's shape.
func (b *buffer) Shape() tensor.Shape { return b.shape.Clone() }

// Numel returns the number of elements, Shape().Numel() without copying
// the shape, so that code sizing its work every step (adapter hooks) does
// not allocate.
func (b *buffer) Numel() int64 { return int64(b.n) }

// dims returns the buffer seen as a matrix: the innermost dimension is the
// column count and all outer dimensions are folded into rows. A 1-D buffer
// is one row; a scalar is 1x1.
func (b *buffer) dims() (rows, cols int) {
	rows = 1
	for _, d := range b.shape[:max(len(b.shape)-1, 0)] {
		rows *= d
	}
	if len(b.shape) == 0 {
		return 1, 1
	}
	return rows, b.shape[len(b.shape)-1]
}

// data returns the F32 elements of the buffer.
func (b *buffer) data() []float32 { return b.st.f32[b.off : b.off+b.n : b.off+b.n] }

// overlaps reports whether two F32 buffers share any element.
func (b *buffer) overlaps(o *buffer) bool {
	return b.st == o.st && b.off < o.off+o.n && o.off < b.off+b.n
}

// lookup checks that x is a live buffer of this backend and returns it, or
// explains why not.
func (c *Backend) lookup(x backend.Buffer) (*buffer, error) {
	b, ok := x.(*buffer)
	switch {
	case x == nil || (ok && b == nil):
		return nil, errors.New("nil buffer")
	case !ok:
		return nil, fmt.Errorf("buffer %T belongs to another backend", x)
	case b.owner != c:
		return nil, errors.New("buffer belongs to another cpu backend")
	case b.freed || b.st.freed:
		return nil, errors.New("buffer used after Free")
	}
	return b, nil
}

// buf returns x as a buffer of any dtype, panicking with the operation and
// operand name when x is unusable.
func (c *Backend) buf(x backend.Buffer, op, name string) *buffer {
	b, err := c.lookup(x)
	if err != nil {
		panic(fmt.Sprintf("cpu: %s: %s: %v", op, name, err))
	}
	return b
}

// f32 returns x as an F32 buffer, panicking like buf otherwise.
func (c *Backend) f32(x backend.Buffer, op, name string) *buffer {
	b := c.buf(x, op, name)
	if b.dtype != tensor.F32 {
		panic(fmt.Sprintf("cpu: %s: %s must be F32, is %v", op, name, b.dtype))
	}
	return b
}

// Zeros allocates an F32 buffer of the given shape filled with zeros
// (reusing the array of a freed buffer of the same size, see recycle.go).
// A negative or overflowing shape panics.
func (c *Backend) Zeros(shape ...int) backend.Buffer {
	n := tensor.Shape(shape).Numel()
	if n < 0 || n != int64(int(n)) {
		panic(fmt.Sprintf("cpu: Zeros: invalid shape %v", shape))
	}
	o := &ownedBuffer{}
	o.st = storage{f32: c.recycled.get(int(n)), recycle: true}
	o.buffer = buffer{owner: c, st: &o.st, dtype: tensor.F32, shape: o.dims.shape(shape), n: int(n)}
	return &o.buffer
}

// ownedBuffer is a buffer made together with its storage and its shape:
// one allocation where Zeros would make three, for the many small
// activations of a forward pass.
type ownedBuffer struct {
	buffer
	st   storage
	dims inlineShape
}

// inlineShape holds a buffer's shape of up to four dimensions in the
// buffer's own allocation.
type inlineShape [4]int

// shape returns a copy of dims, in s when it fits (Shape.Clone's result
// otherwise: nil for no dimensions).
func (s *inlineShape) shape(dims []int) tensor.Shape {
	if len(dims) == 0 || len(dims) > len(s) {
		return tensor.Shape(dims).Clone()
	}
	n := copy(s[:], dims)
	return s[:n:n]
}

// Load copies a host tensor into a new buffer. F32 stays F32 and F64 is
// converted to F32. Every other floating-point dtype that tensor.Decode
// understands (F16, BF16 and ggml's block types: Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, the K-quants Q2_K to Q6_K) is kept as raw bytes and dequantized
// row by row where an operation reads it; NF4 is kept as its codes and
// block scales (see loadNF4) and dequantized the same way.
func (c *Backend) Load(t *tensor.Tensor) (backend.Buffer, error) {
	if t == nil {
		return nil, errors.New("cpu: load: nil tensor")
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("cpu: load: %w", err)
	}
	n := t.Numel()
	if n != int64(int(n)) {
		return nil, fmt.Errorf("cpu: load tensor %q: %d elements do not fit in memory", t.Name, n)
	}
	b := &buffer{owner: c, st: &storage{}, dtype: t.DType, shape: t.Shape.Clone(), n: int(n)}
	switch t.DType {
	case tensor.F32, tensor.F64:
		b.dtype = tensor.F32
		b.st.f32 = make([]float32, n)
		if err := tensor.Decode(t.DType, t.Data, b.st.f32); err != nil {
			return nil, fmt.Errorf("cpu: load tensor %q: %w", t.Name, err)
		}
		return b, nil
	}
	if !t.DType.Float() {
		return nil, fmt.Errorf("cpu: load tensor %q: dtype %v is not a floating-point type", t.Name, t.DType)
	}
	if t.DType == tensor.NF4 {
		return b, loadNF4(b, t)
	}
	// Decode one block to learn whether the row decoder knows this dtype
	// before keeping the bytes.
	probe := make([]float32, t.DType.BlockElems())
	if err := tensor.Decode(t.DType, make([]byte, t.DType.BlockBytes()), probe); err != nil {
		return nil, fmt.Errorf("cpu: load tensor %q: %w", t.Name, err)
	}
	b.st.raw = append([]byte(nil), t.Data...)
	return b, nil
}

// Write copies src into the F32 buffer dst starting at element off.
func (c *Backend) Write(dst backend.Buffer, off int, src []float32) error {
	b, err := c.lookup(dst)
	if err != nil {
		return fmt.Errorf("cpu: write: %w", err)
	}
	if b.dtype != tensor.F32 {
		return fmt.Errorf("cpu: write: buffer is %v, only F32 buffers are writable", b.dtype)
	}
	if off < 0 || off > b.n || len(src) > b.n-off {
		return fmt.Errorf("cpu: write: %d values at offset %d do not fit in a buffer of %d", len(src), off, b.n)
	}
	copy(b.data()[off:], src)
	return nil
}

// Read copies len(dst) elements starting at off out of src, dequantizing
// when src is not F32.
func (c *Backend) Read(src backend.Buffer, off int, dst []float32) error {
	b, err := c.lookup(src)
	if err != nil {
		return fmt.Errorf("cpu: read: %w", err)
	}
	if off < 0 || off > b.n || len(dst) > b.n-off {
		return fmt.Errorf("cpu: read: %d values at offset %d exceed a buffer of %d", len(dst), off, b.n)
	}
	if b.dtype == tensor.F32 {
		copy(dst, b.data()[off:])
		return nil
	}
	if b.st.nf4 != nil { // any range decodes directly
		b.decode(off, dst)
		return nil
	}
	// Decode the whole blocks covering the range, a bounded piece at a
	// time, so reading a slice of a large weight needs little memory.
	be := b.dtype.BlockElems()
	const piece = 1 << 14 // elements, a whole number of blocks for every dtype
	tmp := make([]float32, min(piece, len(dst)+2*be))
	for len(dst) > 0 {
		start := off / be * be
		end := min(start+len(tmp), (off+len(dst)+be-1)/be*be)
		chunk := tmp[:end-start]
		b.decode(start, chunk)
		k := copy(dst, chunk[off-start:])
		dst = dst[k:]
		off += k
	}
	return nil
}

// decodeFast, where set (amd64 with AVX2, arm64), widens the common weight
// dtypes with vector instructions, exactly as tensor.Decode does; it
// reports false for what it leaves to tensor.Decode.
var decodeFast func(dt tensor.DType, src []byte, dst []float32) bool

// decode dequantizes the elements [start, start+len(dst)) of a buffer of any
// dtype; start and len(dst) must be whole blocks (or reach the end), except
// for NF4, where any range decodes.
func (b *buffer) decode(start int, dst []float32) {
	if b.dtype == tensor.F32 {
		copy(dst, b.data()[start:])
		return
	}
	if b.st.nf4 != nil {
		decodeNF4(b.st.nf4, start, dst)
		return
	}
	be, bb := b.dtype.BlockElems(), b.dtype.BlockBytes()
	if start%be != 0 {
		panic(fmt.Sprintf("cpu: decode %v elements [%d, %d): the range starts inside a %d-element block", b.dtype, start, start+len(dst), be))
	}
	src := b.st.raw[start/be*bb:]
	if decodeFast != nil && decodeFast(b.dtype, src, dst) {
		return
	}
	if err := tensor.Decode(b.dtype, src, dst); err != nil {
		panic(fmt.Sprintf("cpu: decode %v elements [%d, %d): %v", b.dtype, start, start+len(dst), err))
	}
}

// row returns row r of a matrix-shaped buffer as float32: the storage
// itself for F32, otherwise dequantized into scratch (len >= cols).
func (b *buffer) row(r int, scratch []float32) []float32 {
	_, cols := b.dims()
	return b.rowRange(r, 0, cols, scratch)
}

// rowRange returns the columns [c0, c1) of row r like row does; c0 must be
// a whole number of blocks into the row.
func (b *buffer) rowRange(r, c0, c1 int, scratch []float32) []float32 {
	_, cols := b.dims()
	if b.dtype == tensor.F32 {
		return b.data()[r*cols+c0 : r*cols+c1]
	}
	out := scratch[:c1-c0]
	b.decode(r*cols+c0, out)
	return out
}

// View returns an F32 buffer of the given shape over the elements
// [off, off+numel(shape)) of the F32 buffer b. It panics when b is not a
// live F32 buffer of this backend or the range does not fit.
func (c *Backend) View(b backend.Buffer, off int, shape ...int) backend.Buffer {
	p := c.f32(b, "View", "b")
	n := tensor.Shape(shape).Numel()
	if n < 0 || off < 0 || off > p.n || n > int64(p.n-off) {
		panic(fmt.Sprintf("cpu: View: shape %v at offset %d does not fit in a buffer of %d elements", shape, off, p.n))
	}
	v := &viewBuffer{}
	v.buffer = buffer{owner: c, st: p.st, dtype: tensor.F32, shape: v.dims.shape(shape), off: p.off + off, n: int(n), view: true}
	return &v.buffer
}

// viewBuffer is a view with its shape in the same allocation.
type viewBuffer struct {
	buffer
	dims inlineShape
}

// Free releases b. Freeing the buffer Zeros or Load returned releases its
// memory and invalidates all its views; freeing a view invalidates only
// that view. Freeing nil or an already freed buffer does nothing; freeing a
// buffer of another backend panics.
func (c *Backend) Free(x backend.Buffer) {
	if x == nil {
		return
	}
	b, ok := x.(*buffer)
	if ok && b == nil {
		return
	}
	if !ok || b.owner != c {
		panic(fmt.Sprintf("cpu: Free: buffer %T belongs to another backend", x))
	}
	b.freed = true
	if !b.view && !b.st.freed {
		if b.st.recycle {
			c.recycled.put(b.st.f32)
		}
		b.st.freed = true
		b.st.f32, b.st.raw, b.st.nf4 = nil, nil, nil
	}
}
