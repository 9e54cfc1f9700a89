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

// storage is the device memory shared by a buffer and its views: one
// device buffer, or several parts when it is larger than one binding (see
// chunks.go).
type storage struct {
	parts []part
	per   int // elements in every part but the last
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

// bindLimit is the largest buffer a kernel may bind: the adapter's storage
// binding limit, capped by its largest buffer.
func (g *Backend) bindLimit() int {
	limit := g.limits.MaxStorageBufferBindingSize
	if m := g.limits.MaxBufferSize; m > 0 && (limit == 0 || m < limit) {
		limit = m
	}
	if limit == 0 || limit > math.MaxInt32 {
		limit = math.MaxInt32 // the kernels index with u32
	}
	return int(limit / 16 * 16) // padBytes keeps a part within it
}

// padBytes rounds a device buffer's size up to a multiple of 16 bytes, so
// that a kernel binding it as vec4s (matmul_tiled.wgsl) reaches every
// element.
func padBytes(n int) int { return max((n+15)/16*16, 16) }

// temp creates a one-part storage of size bytes for a kernel's scratch
// (row statistics, partial sums), checked against the binding limit.
func (g *Backend) temp(label string, size int64) (*storage, error) {
	size = int64(padBytes(int(size)))
	if limit := g.bindLimit(); size > int64(limit) {
		return nil, fmt.Errorf("gpu: %s needs a buffer of %d bytes; %s binds at most %d", label, size, g.info.Name, limit)
	}
	b, err := g.newBuffer(label, uint64(size), storageUsage)
	if err != nil {
		return nil, err
	}
	return &storage{parts: []part{{buf: b, n: int(size / 4)}}, per: int(size / 4)}, nil
}

// allocParts creates the device storage for total elements of dt in rows
// of cols: one device buffer, or parts of at most maxPart bytes each.
func (g *Backend) allocParts(label string, dt tensor.DType, total, cols int) (*storage, error) {
	per, err := planParts(dt, total, cols, g.maxPart)
	if err != nil {
		return nil, fmt.Errorf("gpu: %s: %w", label, err)
	}
	st := &storage{per: per}
	for start := 0; start < max(total, 1); start += per {
		n := min(per, total-start)
		b, err := g.newBuffer(label, uint64(padBytes(encodedBytes(dt, n))), storageUsage)
		if err != nil {
			for _, p := range st.parts {
				g.dropBuffer(p.buf)
			}
			return nil, err
		}
		st.parts = append(st.parts, part{buf: b, start: start, n: n})
	}
	return st, nil
}

// Zeros allocates an F32 buffer of the given shape filled with zeros. An
// invalid shape, or one the device cannot hold, panics.
func (g *Backend) Zeros(shape ...int) backend.Buffer {
	s := tensor.Shape(shape).Clone()
	n := s.Numel()
	if n < 0 || n != int64(int(n)) || n > math.MaxUint32 {
		panic(fmt.Sprintf("gpu: Zeros: invalid shape %v", s))
	}
	b := &buffer{owner: g, dtype: tensor.F32, shape: s, n: int(n)}
	_, cols := b.dims()
	st, err := g.allocParts(fmt.Sprintf("zeros%v", s), tensor.F32, int(n), cols)
	if err != nil {
		panic(fmt.Sprintf("gpu: Zeros: %v", err))
	}
	b.st = st
	g.fill(b, 0)
	g.markZero(st)
	return b
}

// fill sets every element of an F32 buffer to v. Device memory may be
// recycled, so Zeros clears explicitly rather than trusting the allocator.
func (g *Backend) fill(b *buffer, v float32) {
	for _, s := range spans("fill", b.n, operand{"x", b, 1}) {
		g.run(kFill, groupsFor(s.n, 256), args{}.u(s.offs[0], s.n).f(v), s.bufs[0])
	}
}

// groupsFor returns the workgroups needed for n items of size per group.
func groupsFor(n, size int) int { return (n + size - 1) / size }

// Load uploads a host tensor. F32 and F64 become F32 buffers; F16, BF16,
// NF4 and ggml's block types (Q4_0 to Q8_0, the K-quants Q2_K to Q6_K,
// IQ4_NL, IQ4_XS) keep their encoding on the device and are decoded inside the kernels
// that read them. A tensor larger than one binding is
// stored in parts of whole rows.
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
	// encode returns the device bytes of elements [start, start+n).
	var encode func(start, n int) ([]byte, error)
	switch {
	case t.DType == tensor.F32 || t.DType == tensor.F64:
		vals := make([]float32, n)
		if err := tensor.Decode(t.DType, t.Data, vals); err != nil {
			return nil, fmt.Errorf("gpu: load tensor %q: %w", t.Name, err)
		}
		b.dtype = tensor.F32
		encode = func(start, n int) ([]byte, error) { return f32Bytes(vals[start : start+n]), nil }
	case t.DType == tensor.NF4:
		d, err := tensor.ParseNF4(t.Data)
		if err != nil {
			return nil, fmt.Errorf("gpu: load tensor %q: %w", t.Name, err)
		}
		encode = func(start, n int) ([]byte, error) { return nf4DeviceBytes(d, start, n) }
	case deviceDType(t.DType):
		encode = func(start, n int) ([]byte, error) {
			lo, hi := rawBytes(t.DType, start), rawBytes(t.DType, start+n)
			return t.Data[lo:min(hi, len(t.Data))], nil
		}
	default:
		return nil, fmt.Errorf("gpu: load tensor %q: dtype %v is not supported", t.Name, t.DType)
	}
	_, cols := b.dims()
	st, err := g.allocParts(t.Name, b.dtype, b.n, cols)
	if err != nil {
		return nil, fmt.Errorf("gpu: load tensor %q: %w", t.Name, err)
	}
	b.st = st
	for _, p := range st.parts {
		data, err := encode(p.start, p.n)
		if err == nil {
			err = g.upload(p.buf, 0, data)
		}
		if err != nil {
			g.release(st)
			return nil, fmt.Errorf("gpu: load tensor %q: %w", t.Name, err)
		}
	}
	return b, nil
}

// nf4DeviceBytes lays the elements [start, start+n) of an NF4 weight out
// for shaders/weight_nf4.wgsl: the word index of the scales, the code
// book, the packed codes, then one float32 scale per block (double-quantized
// scales are expanded here, with the same arithmetic as the tensor
// package). start is a multiple of the block size, 64.
func nf4DeviceBytes(d *tensor.NF4Data, start, n int) ([]byte, error) {
	// The code book is what each code dequantizes to with a scale of 1.
	probe := &tensor.NF4Data{N: 16, Codes: []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}, Absmax: []float32{1}}
	book := make([]float32, 16)
	if err := tensor.DequantizeNF4Range(probe, 0, book); err != nil {
		return nil, err
	}
	codes := d.Codes[start/2 : (start+n+1)/2]
	codeWords := (len(codes) + 3) / 4
	b0, nb := start/64, (n+63)/64
	out := make([]byte, 4*(17+codeWords+nb))
	scales := 17 + codeWords
	binary.LittleEndian.PutUint32(out, uint32(scales))
	copy(out[4:], f32Bytes(book))
	copy(out[68:], codes)
	for b := range nb {
		binary.LittleEndian.PutUint32(out[4*(scales+b):], math.Float32bits(d.BlockAbsmax(b0+b)))
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

// upload writes bytes into a device buffer at a byte offset, after
// everything recorded so far. A length that is not a multiple of 4 is
// padded.
func (g *Backend) upload(buf *wgpu.Buffer, off uint64, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if len(data)%4 != 0 {
		data = append(append([]byte(nil), data...), make([]byte, 4-len(data)%4)...)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recordPendingFor([]*wgpu.Buffer{buf})
	g.unmarkZeroLocked(buf)
	g.flushLocked()
	if err := g.queue.WriteBuffer(buf, off, data); err != nil {
		return fmt.Errorf("gpu: upload %d bytes: %w", len(data), err)
	}
	return nil
}

// slice returns the elements [off, off+n) of b as a buffer of its own
// (a view, for any dtype), for walking them with spans.
func (b *buffer) slice(off, n int) *buffer {
	s := *b
	s.off, s.n, s.shape, s.view = b.off+off, n, tensor.Shape{n}, true
	return &s
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
	for _, s := range spans("Write", len(src), operand{"dst", b.slice(off, len(src)), 1}) {
		if err := g.upload(s.bufs[0], uint64(4*s.offs[0]), f32Bytes(src[s.start:s.start+s.n])); err != nil {
			return err
		}
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
// device when src is not F32. It waits for the work recorded before it and
// reads back once, however many parts src has.
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
	var copies []copyRange
	for _, s := range spans("Read", len(dst), operand{"src", b.slice(off, len(dst)), 1}) {
		if b.dtype == tensor.F32 {
			copies = append(copies, copyRange{s.bufs[0], uint64(4 * s.offs[0]), uint64(4 * s.n)})
			continue
		}
		// Decode through temporaries no larger than a part of F32.
		step := max(g.maxPart/4, 1)
		for i := 0; i < s.n; i += step {
			n := min(step, s.n-i)
			tmp, err := g.temp("decode", 4*int64(n))
			if err != nil {
				return fmt.Errorf("gpu: read: %w", err)
			}
			defer g.release(tmp)
			g.run(kDecode.withWeight(b.dtype), groupsFor(n, 256), args{}.u(s.offs[0]+i, n), s.bufs[0], tmp.parts[0].buf)
			copies = append(copies, copyRange{tmp.parts[0].buf, 0, uint64(4 * n)})
		}
	}
	raw, err := g.readBytes(copies...)
	if err != nil {
		return fmt.Errorf("gpu: read: %w", err)
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return nil
}

// readTimeout bounds one read-back; a device that takes longer is hung.
// It is generous because a software adapter (lavapipe) compiles a
// pipeline's shader at its first submit: the large matmul tiles took
// minutes cold on a loaded 2-core machine, which a 2-minute bound
// reported as a hang (TestLoRATrainingMatchesCPU in CI).
const readTimeout = 10 * time.Minute

// copyRange is size bytes at byte off of a device buffer.
type copyRange struct {
	buf       *wgpu.Buffer
	off, size uint64
}

// readBytes submits the recorded work, copies the ranges one after the
// other into the staging buffer and returns their bytes: one read-back.
func (g *Backend) readBytes(ranges ...copyRange) ([]byte, error) {
	var size uint64
	for _, r := range ranges {
		size += r.size
	}
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
	for _, r := range ranges {
		g.recordPendingFor([]*wgpu.Buffer{r.buf})
	}
	if err := g.endPass(); err != nil {
		return nil, err
	}
	at := uint64(0)
	for _, r := range ranges {
		g.enc.CopyBufferToBuffer(r.buf, r.off, g.staging, at, r.size)
		at += r.size
	}
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

// release frees a storage after the work recorded so far.
func (g *Backend) release(st *storage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recordPendingOfLocked(st)
	st.freed = true
	for _, p := range st.parts {
		g.unmarkZeroLocked(p.buf)
	}
	for _, p := range st.parts {
		g.afterSubmit = append(g.afterSubmit, p.buf)
	}
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
