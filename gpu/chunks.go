package gpu

import (
	"fmt"
	"sort"

	"github.com/gogpu/wgpu"

	"github.com/graft-ml/graft/core/tensor"
)

// A buffer larger than one binding is stored as several device buffers,
// its parts, each holding consecutive elements and each small enough to
// bind. Parts hold whole rows of the allocation's shape whenever a row
// fits, so that row-by-row kernels run once per run of rows that share a
// part; operations split their work into spans (see spans) and record one
// dispatch per span. Each part is a buffer of its own, bound whole, so no
// binding offset (and no minStorageBufferOffsetAlignment) is involved, and
// a part's elements are addressed from 0 by the unchanged kernels.

// part is one device buffer of a storage, holding its elements
// [start, start+n).
type part struct {
	buf      *wgpu.Buffer
	start, n int
}

// end is the element after the part's last.
func (p *part) end() int { return p.start + p.n }

// find returns the part holding element e.
func (s *storage) find(e int) *part {
	i := 0
	if s.per > 0 {
		i = min(e/s.per, len(s.parts)-1)
	}
	return &s.parts[i]
}

// encodedBytes returns how many bytes n elements of dt take on the device,
// a multiple of 4; every part but the last starts at a multiple of
// quantum(dt), so the count is exact there.
func encodedBytes(dt tensor.DType, n int) int {
	return max((rawBytes(dt, n)+3)/4*4, 4)
}

// rawBytes returns how many bytes n elements of dt take, unpadded: for a
// multiple of quantum(dt), where element n starts in the encoding.
func rawBytes(dt tensor.DType, n int) int {
	var b int
	switch dt {
	case tensor.F32:
		b = 4 * n
	case tensor.F16, tensor.BF16:
		b = 2 * n
	case tensor.NF4:
		// header and code book, codes, one scale per block of 64
		b = 4 * (17 + ((n+1)/2+3)/4 + (n+63)/64)
	default:
		if !deviceDType(dt) {
			panic(fmt.Sprintf("gpu: no device encoding for %v", dt))
		}
		// ggml's blocks, stored as they are in the file
		be := dt.BlockElems()
		b = (n + be - 1) / be * dt.BlockBytes()
	}
	return b
}

// quantum returns the element multiple a part of dt may start at: where
// a word (F16, BF16) or a block (ggml's blocks of 32 or K-quant
// super-blocks of 256, NF4's of 64) begins.
func quantum(dt tensor.DType) int {
	switch dt {
	case tensor.F16, tensor.BF16:
		return 2
	}
	return dt.BlockElems()
}

// planParts returns how many elements each part of a total-element buffer
// of dt with rows of cols holds (the last part holds the rest): everything
// when it fits in limit bytes, else as many whole rows as fit at a
// multiple of quantum(dt), else, when not even one row fits, as many
// elements as fit.
func planParts(dt tensor.DType, total, cols, limit int) (int, error) {
	if encodedBytes(dt, total) <= limit {
		return max(total, 1), nil
	}
	q := quantum(dt)
	fits := func(n int) bool { return encodedBytes(dt, n) <= limit }
	if cols > 0 {
		rows := sort.Search(total/cols+1, func(r int) bool { return !fits(r * cols) }) - 1
		for ; rows > 0; rows-- {
			if rows*cols%q == 0 {
				return rows * cols, nil
			}
		}
	}
	blocks := sort.Search(total/q+1, func(b int) bool { return !fits(b * q) }) - 1
	if blocks < 1 {
		return 0, fmt.Errorf("a binding of %d bytes cannot hold one block of %d %v elements", limit, q, dt)
	}
	return blocks * q, nil
}

// operand is a buffer an operation walks in steps of unit elements: 1 for
// element-by-element kernels, the row length for row-by-row ones. A nil b
// is an absent optional operand.
type operand struct {
	name string
	b    *buffer
	unit int
}

// span is a run of steps [start, start+n) of an operation in which every
// operand's elements lie in one part: bufs[k] is that part of operand k
// and offs[k] the offset of the span's first element in it.
type span struct {
	start, n int
	bufs     []*wgpu.Buffer
	offs     []int
}

// spans splits total steps into the runs that one dispatch each can do.
// A buffer in one part gives one span; a step that would straddle two
// parts (a view whose rows do not line up with its storage's parts) is a
// programming error and panics.
func spans(op string, total int, ops ...operand) []span {
	var out []span
	for p := 0; p < total; {
		s := span{start: p, n: total - p, bufs: make([]*wgpu.Buffer, len(ops)), offs: make([]int, len(ops))}
		for k, o := range ops {
			if o.b == nil {
				continue
			}
			e := o.b.off + p*o.unit
			pt := o.b.st.find(e)
			s.bufs[k], s.offs[k] = pt.buf, e-pt.start
			if o.unit == 0 {
				continue // no elements: nothing to split
			}
			avail := (pt.end() - e) / o.unit
			if avail < 1 {
				panic(fmt.Sprintf("gpu: %s: %s %v: a step of %d elements at element %d crosses the boundary of a device buffer of %d elements (the binding limit splits its storage)",
					op, o.name, o.b.shape, o.unit, e, pt.n))
			}
			s.n = min(s.n, avail)
		}
		out = append(out, s)
		p += s.n
	}
	return out
}

// whole returns the device buffer and offset of an operand a kernel binds
// whole (a weight vector, a broadcast row), panicking if it spans parts;
// nil gives nil and 0.
func whole(op, name string, b *buffer) (*wgpu.Buffer, int) {
	if b == nil {
		return nil, 0
	}
	pt := b.st.find(b.off)
	if b.off+b.n > pt.end() {
		panic(fmt.Sprintf("gpu: %s: %s %v is larger than one binding of this device", op, name, b.shape))
	}
	return pt.buf, b.off - pt.start
}
