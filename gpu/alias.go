package gpu

import (
	"fmt"

	"github.com/gogpu/wgpu"
)

// unaliasLocked returns the device buffers a dispatch binds for its
// operands. Every operand binding is read-write storage, and WebGPU
// forbids binding one buffer twice that way in a dispatch, which in-place
// operations (dst also an input), views of one buffer and two absent
// operands would do. Where the platform enforces that
// (aliasedBindingsAllowed is false) a repeated buffer is bound as a copy
// taken just before the dispatch, and each absent operand after the first
// gets a dummy of its own. Kernels list their outputs first, so a repeat
// is an input, and the copy holds exactly what an in-place kernel reads,
// since each invocation reads its elements before it writes them.
func (g *Backend) unaliasLocked(bufs []*wgpu.Buffer) ([]*wgpu.Buffer, error) {
	if aliasedBindingsAllowed {
		return bufs, nil
	}
	out := make([]*wgpu.Buffer, len(bufs))
	copies := map[*wgpu.Buffer]*wgpu.Buffer{}
	dummies := 0
	for i, b := range bufs {
		switch {
		case b == nil && dummies == 0:
			out[i] = g.dummy
			dummies++
		case b == nil:
			d, err := g.newBuffer("dummy", 16, wgpu.BufferUsageStorage)
			if err != nil {
				return nil, err
			}
			g.afterSubmit = append(g.afterSubmit, d)
			out[i] = d
		case !bindsBefore(bufs[:i], b):
			out[i] = b
		case copies[b] != nil:
			out[i] = copies[b]
		default:
			c, err := g.copyLocked(b)
			if err != nil {
				return nil, err
			}
			copies[b] = c
			out[i] = c
		}
	}
	return out, nil
}

func bindsBefore(earlier []*wgpu.Buffer, b *wgpu.Buffer) bool {
	for _, e := range earlier {
		if e == b {
			return true
		}
	}
	return false
}

// copyLocked records a copy of src, after the work recorded so far, into a
// temporary released after the next submit, and leaves a compute pass open
// on the same encoder for the dispatch that reads it.
func (g *Backend) copyLocked(src *wgpu.Buffer) (*wgpu.Buffer, error) {
	c, err := g.newBuffer("operand copy", src.Size(), storageUsage)
	if err != nil {
		return nil, err
	}
	g.afterSubmit = append(g.afterSubmit, c)
	if err := g.endPass(); err != nil {
		return nil, err
	}
	g.enc.CopyBufferToBuffer(src, 0, c, 0, src.Size())
	pass, err := g.enc.BeginComputePass(nil)
	if err != nil {
		return nil, fmt.Errorf("begin compute pass: %w", err)
	}
	g.pass = pass
	return c, nil
}
