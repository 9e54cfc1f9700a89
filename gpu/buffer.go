package gpu

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gogpu/wgpu"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/tensor"
)

// storage is one device buffer, shared by a buffer and its views.
type storage struct {
	buf   *wgpu.Buffer
	freed bool
}

// buffer is the gpu implementation of backend.Buffer: for F32 the
// elements [off, off+n) of its storage; for other dtypes the whole storage
// holds the encoded weight.
type buffer struct {
	owner *Backend
	st    *storage
	dtype tensor.DType
	shape tensor.Shape
	off   int
	n     int
	view  bool
	freed bool
}

func (b *buffer) DType() tensor.DType { return b.dtype }

// Shape returns a copy of the buffer's shape.
func (b *buffer) Shape() tensor.Shape { return b.shape.Clone() }

// dims sees the buffer as a matrix: the innermost dimension is the column
// count, all outer ones fold into rows.
func (b *buffer) dims() (rows, cols int) {
	if len(b.shape) == 0 {
		return 1, 1
	}
	rows = 1
	for _, d := range b.shape[:len(b.shape)-1] {
		rows *= d
	}
	return rows, b.shape[len(b.shape)-1]
}

func (g *Backend) lookup(x backend.Buffer) (*buffer, error) {
	b, ok := x.(*buffer)
	switch {
	case x == nil || (ok && b == nil):
		return nil, errors.New("nil buffer")
	case !ok:
		return nil, fmt.Errorf("buffer %T belongs to another backend", x)
	case b.owner != g:
		return nil, errors.New("buffer belongs to another gpu backend")
	case b.freed || b.st.freed:
		return nil, errors.New("buffer used after Free")
	}
	return b, nil
}

// buf returns x as a buffer of any dtype or panics naming op and operand.
func (g *Backend) buf(x backend.Buffer, op, name string) *buffer {
	b, err := g.lookup(x)
	if err != nil {
		panic(fmt.Sprintf("gpu: %s: %s: %v", op, name, err))
	}
	return b
}

// f32 returns x as an F32 buffer or panics like buf.
func (g *Backend) f32(x backend.Buffer, op, name string) *buffer {
	b := g.buf(x, op, name)
	if b.dtype != tensor.F32 {
		panic(fmt.Sprintf("gpu: %s: %s must be F32, is %v", op, name, b.dtype))
	}
	return b
}

// opt is f32 for an optional operand: nil stays nil.
func (g *Backend) opt(x backend.Buffer, op, name string) *buffer {
	if x == nil {
		return nil
	}
	return g.f32(x, op, name)
}

// checkSize panics unless b holds n elements.
func checkSize(op, name string, b *buffer, n int) {
	if b.n != n {
		panic(fmt.Sprintf("gpu: %s: %s has %d elements (shape %v), want %d", op, name, b.n, b.shape, n))
	}
}

const storageUsage = wgpu.BufferUsageStorage | wgpu.BufferUsageCopyDst | wgpu.BufferUsageCopySrc

// alloc creates the device storage for size bytes, checking it against the
// binding limit first.
func (g *Backend) alloc(label string, size int64) (*storage, error) {
	size = max((size+3)/4*4, 4)
	if limit := g.limits.MaxStorageBufferBindingSize; limit > 0 && uint64(size) > limit {
		return nil, fmt.Errorf("gpu: %s needs a buffer of %d bytes; %s binds at most %d", label, size, g.info.Name, limit)
	}
	b, err := g.newBuffer(label, uint64(size), storageUsage)
	if err != nil {
		return nil, err
	}
	return &storage{buf: b}, nil
}

// Zeros allocates an F32 buffer of the given shape filled with zeros. An
// invalid shape, or one over the device's limits, panics.
func (g *Backend) Zeros(shape ...int) backend.Buffer {
	s := tensor.Shape(shape).Clone()
	n := s.Numel()
	if n < 0 || n != int64(int(n)) || n > math.MaxUint32 {
		panic(fmt.Sprintf("gpu: Zeros: invalid shape %v", s))
	}
	st, err := g.alloc(fmt.Sprintf("zeros%v", s), 4*n)
	if err != nil {
		panic(fmt.Sprintf("gpu: Zeros: %v", err))
	}
	b := &buffer{owner: g, st: st, dtype: tensor.F32, shape: s, n: int(n)}
	g.fill(b, 0)
	return b
}

// fill sets every element of an F32 buffer to v. Device memory may be
// recycled, so Zeros clears explicitly rather than trusting the allocator.
func (g *Backend) fill(b *buffer, v float32) {
	g.run(kFill, groupsFor(b.n, 256), args{}.u(b.off, b.n).f(v), b.st)
}

// groupsFor returns the workgroups needed for n items of size per group.
func groupsFor(n, size int) int { return (n + size - 1) / size }

// Load uploads a host tensor. F32 and F64 become F32 buffers; F16, BF16,
// Q8_0, Q4_0 and NF4 keep their encoding on the device and are decoded
// inside the kernels that read them.
func (g *Backend) Load(t *tensor.Tensor) (backend.Buffer, error) {
	if t == nil {
		return nil, errors.New("gpu: load: nil tensor")
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("gpu: load: %w", err)
	}
	n := t.Numel()
	if n > math.MaxUint32 {
		return nil, fmt.Errorf("gpu: load tensor %q: %d elements are too many", t.Name, n)
	}
	b := &buffer{owner: g, dtype: t.DType, shape: t.Shape.Clone(), n: int(n)}
	var data []byte
	switch {
	case t.DType == tensor.F32 || t.DType == tensor.F64:
		vals := make([]float32, n)
		if err := tensor.Decode(t.DType, t.Data, vals); err != nil {
			return nil, fmt.Errorf("gpu: load tensor %q: %w", t.Name, err)
		}
		b.dtype, data = tensor.F32, f32Bytes(vals)
	case t.DType == tensor.NF4:
		d, err := tensor.ParseNF4(t.Data)
		if err != nil {
			return nil, fmt.Errorf("gpu: load tensor %q: %w", t.Name, err)
		}
		if data, err = nf4DeviceBytes(d); err != nil {
			return nil, fmt.Errorf("gpu: load tensor %q: %w", t.Name, err)
		}
	case deviceDType(t.DType):
		data = t.Data
	default:
		return nil, fmt.Errorf("gpu: load tensor %q: dtype %v is not supported", t.Name, t.DType)
	}
	st, err := g.alloc(t.Name, int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("gpu: load tensor %q: %w", t.Name, err)
	}
	b.st = st
	if err := g.upload(st, 0, data); err != nil {
		st.buf.Release()
		return nil, fmt.Errorf("gpu: load tensor %q: %w", t.Name, err)
	}
	return b, nil
}

// nf4DeviceBytes lays an NF4 weight out for shaders/weight_nf4.wgsl: the
// word index of the scales, the code book, the packed codes, then one
// float32 scale per block (double-quantized scales are expanded here, with
// the same arithmetic as the tensor package).
func nf4DeviceBytes(d *tensor.NF4Data) ([]byte, error) {
	// The code book is what each code dequantizes to with a scale of 1.
	probe := &tensor.NF4Data{N: 16, Codes: []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}, Absmax: []float32{1}}
	book := make([]float32, 16)
	if err := tensor.DequantizeNF4Range(probe, 0, book); err != nil {
		return nil, err
	}
	codeWords := (len(d.Codes) + 3) / 4
	nb := (d.N + 63) / 64
	out := make([]byte, 4*(17+codeWords+nb))
	scales := 17 + codeWords
	binary.LittleEndian.PutUint32(out, uint32(scales))
	copy(out[4:], f32Bytes(book))
	copy(out[68:], d.Codes)
	for b := range nb {
		binary.LittleEndian.PutUint32(out[4*(scales+b):], math.Float32bits(d.BlockAbsmax(b)))
	}
	return out, nil
}

func f32Bytes(vals []float32) []byte {
	out := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out
}

// upload writes bytes into storage at a byte offset, after everything
// recorded so far. A length that is not a multiple of 4 is padded.
func (g *Backend) upload(st *storage, off uint64, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if len(data)%4 != 0 {
		data = append(append([]byte(nil), data...), make([]byte, 4-len(data)%4)...)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.flushLocked()
	if err := g.queue.WriteBuffer(st.buf, off, data); err != nil {
		return fmt.Errorf("gpu: upload %d bytes: %w", len(data), err)
	}
	return nil
}

// Write copies host values into the F32 buffer dst starting at element off.
func (g *Backend) Write(dst backend.Buffer, off int, src []float32) error {
	b, err := g.lookup(dst)
	if err != nil {
		return fmt.Errorf("gpu: write: %w", err)
	}
	if b.dtype != tensor.F32 {
		return fmt.Errorf("gpu: write: buffer is %v, only F32 buffers are writable", b.dtype)
	}
	if off < 0 || off > b.n || len(src) > b.n-off {
		return fmt.Errorf("gpu: write: %d values at offset %d do not fit in a buffer of %d", len(src), off, b.n)
	}
	if err := g.upload(b.st, uint64(4*(b.off+off)), f32Bytes(src)); err != nil {
		return err
	}
	return g.takeErr()
}

// takeErr returns and clears the first recorded device error.
func (g *Backend) takeErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.err
	g.err = nil
	return err
}

// Read copies len(dst) elements starting at off out of src, decoding on the
// device when src is not F32. It waits for the work recorded before it.
func (g *Backend) Read(src backend.Buffer, off int, dst []float32) error {
	b, err := g.lookup(src)
	if err != nil {
		return fmt.Errorf("gpu: read: %w", err)
	}
	if off < 0 || off > b.n || len(dst) > b.n-off {
		return fmt.Errorf("gpu: read: %d values at offset %d exceed a buffer of %d", len(dst), off, b.n)
	}
	if len(dst) == 0 {
		return nil
	}
	st, start := b.st, b.off+off
	if b.dtype != tensor.F32 {
		tmp, err := g.alloc("decode", 4*int64(len(dst)))
		if err != nil {
			return fmt.Errorf("gpu: read: %w", err)
		}
		defer g.release(tmp)
		g.run(kDecode.withWeight(b.dtype), groupsFor(len(dst), 256), args{}.u(off, len(dst)), st, tmp)
		st, start = tmp, 0
	}
	raw, err := g.readBytes(st, uint64(4*start), uint64(4*len(dst)))
	if err != nil {
		return fmt.Errorf("gpu: read: %w", err)
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return nil
}

// readTimeout bounds one read-back; a device that takes longer is hung.
const readTimeout = 2 * time.Minute

// readBytes submits the recorded work, copies size bytes at off out of st
// through the staging buffer and returns them: one read-back.
func (g *Backend) readBytes(st *storage, off, size uint64) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.staging == nil || g.staging.Size() < size {
		if g.staging != nil {
			g.afterSubmit = append(g.afterSubmit, g.staging)
		}
		s, err := g.newBuffer("staging", max(size, 1<<16), wgpu.BufferUsageMapRead|wgpu.BufferUsageCopyDst)
		if err != nil {
			return nil, err
		}
		g.staging = s
	}
	if err := g.endPass(); err != nil {
		return nil, err
	}
	g.enc.CopyBufferToBuffer(st.buf, off, g.staging, 0, size)
	g.flushLocked()
	if err := g.err; err != nil {
		g.err = nil
		return nil, err
	}
	g.readBacks.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	if err := g.staging.Map(ctx, wgpu.MapModeRead, 0, size); err != nil {
		return nil, fmt.Errorf("map: %w", err)
	}
	defer g.staging.Unmap()
	rng, err := g.staging.MappedRange(0, size)
	if err != nil {
		return nil, fmt.Errorf("mapped range: %w", err)
	}
	return append([]byte(nil), rng.Bytes()...), nil
}

// release frees a temporary after the work recorded so far.
func (g *Backend) release(st *storage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st.freed = true
	g.afterSubmit = append(g.afterSubmit, st.buf)
}

// View returns an F32 buffer of the given shape over the elements
// [off, off+numel(shape)) of the F32 buffer b.
func (g *Backend) View(b backend.Buffer, off int, shape ...int) backend.Buffer {
	p := g.f32(b, "View", "b")
	s := tensor.Shape(shape).Clone()
	n := s.Numel()
	if n < 0 || off < 0 || off > p.n || n > int64(p.n-off) {
		panic(fmt.Sprintf("gpu: View: shape %v at offset %d does not fit in a buffer of %d elements", s, off, p.n))
	}
	return &buffer{owner: g, st: p.st, dtype: tensor.F32, shape: s, off: p.off + off, n: int(n), view: true}
}

// Free releases b. Freeing a buffer Zeros or Load returned releases its
// device memory once the work recorded so far is done and invalidates its
// views; freeing a view invalidates only the view. Freeing nil or a freed
// buffer does nothing; a buffer of another backend panics.
func (g *Backend) Free(x backend.Buffer) {
	if x == nil {
		return
	}
	b, ok := x.(*buffer)
	if ok && b == nil {
		return
	}
	if !ok || b.owner != g {
		panic(fmt.Sprintf("gpu: Free: buffer %T belongs to another backend", x))
	}
	if b.freed {
		return
	}
	b.freed = true
	if !b.view && !b.st.freed {
		g.release(b.st)
	}
}
