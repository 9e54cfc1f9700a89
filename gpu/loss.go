package gpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/gogpu/wgpu"

	"github.com/graft-ml/graft/core/backend"
)

// Softmax sets each row of dst to the softmax of that row of x divided by
// temperature (0 means 1); dst may be x.
func (g *Backend) Softmax(dst, x backend.Buffer, temperature float32) {
	d, xb := g.f32(dst, "Softmax", "dst"), g.f32(x, "Softmax", "x")
	checkSize("Softmax", "dst", d, xb.n)
	if temperature == 0 {
		temperature = 1
	}
	rows, cols := xb.dims()
	for _, s := range spans("Softmax", rows, operand{"dst", d, cols}, operand{"x", xb, cols}) {
		g.run(kSoftmax, s.n, args{}.u(s.n, cols, s.offs[0], s.offs[1]).f(1/temperature), s.bufs[0], s.bufs[1])
	}
}

// CrossEntropy returns sum_r weight[r] * -log softmax(logits[r])[targets[r]]
// and, when dlogits is non-nil (it may be logits itself), sets it to
// gradScale * weight[r] * (softmax(logits[r]) - onehot(targets[r])). Each
// row's loss is computed on the device; the rows are read back in one
// transfer and summed in float64 in row order.
func (g *Backend) CrossEntropy(dlogits, logits backend.Buffer, targets []int32, weights []float32, gradScale float32) float64 {
	const op = "CrossEntropy"
	lb := g.f32(logits, op, "logits")
	rows, vocab := lb.dims()
	if len(targets) != rows || (weights != nil && len(weights) != rows) {
		panic(fmt.Sprintf("gpu: %s: logits %v has %d rows; %d targets, %d weights", op, lb.shape, rows, len(targets), len(weights)))
	}
	w := make([]float32, rows)
	for r := range w {
		w[r] = 1
		if weights != nil {
			w[r] = weights[r]
		}
		if t := targets[r]; w[r] != 0 && (t < 0 || int(t) >= vocab) {
			panic(fmt.Sprintf("gpu: %s: targets[%d] = %d is outside the vocabulary of %d", op, r, t, vocab))
		}
	}
	dl := g.opt(dlogits, op, "dlogits")
	checkOpt(op, "dlogits", dl, lb.n)
	if rows == 0 {
		return 0
	}
	losses, err := g.temp("losses", 4*int64(rows))
	if err != nil {
		panic(fmt.Sprintf("gpu: %s: %v", op, err))
	}
	defer g.release(losses)
	lossBuf := losses.parts[0].buf
	// Every run of rows writes its losses into the one buffer, which comes
	// back in one read.
	for _, s := range spans(op, rows, operand{"logits", lb, vocab}, operand{"dlogits", dl, vocab}) {
		r0, r1 := s.start, s.start+s.n
		a := args{}.u(s.n, vocab, s.offs[0], bit(dl != nil), s.offs[1]).f(gradScale).u(r0).i32s(targets[r0:r1]).f(w[r0:r1]...)
		g.run(kCrossEnt, s.n, a, s.bufs[1], s.bufs[0], lossBuf)
	}
	raw, err := g.readBytes(copyRange{lossBuf, 0, 4 * uint64(rows)})
	if err != nil {
		panic(fmt.Sprintf("gpu: %s: read the loss: %v", op, err))
	}
	var loss float64
	for r := range rows {
		loss += float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*r:])))
	}
	return loss
}

// sumsqChunk is how many elements one SumSquares workgroup adds up.
const sumsqChunk = 4096

// sumsqSlots is how many buffers one SumSquares dispatch reads: with the
// partial sums and the arguments, the eight storage bindings a shader
// stage is guaranteed.
const sumsqSlots = 6

// SumSquares returns the sum of squares of all elements of the buffers:
// fixed chunks are summed on the device, up to sumsqSlots buffers a
// dispatch, and the partial sums of all buffers come back in one transfer
// to be added in float64.
func (g *Backend) SumSquares(bufs ...backend.Buffer) float64 {
	var all []span
	total := 0
	for i, x := range bufs {
		b := g.f32(x, "SumSquares", fmt.Sprintf("bufs[%d]", i))
		for _, s := range spans("SumSquares", b.n, operand{fmt.Sprintf("bufs[%d]", i), b, 1}) {
			if s.n > 0 {
				all = append(all, s)
				total += groupsFor(s.n, sumsqChunk)
			}
		}
	}
	if total == 0 {
		return 0
	}
	partial, err := g.temp("sumsq", 4*int64(total))
	if err != nil {
		panic(fmt.Sprintf("gpu: SumSquares: %v", err))
	}
	defer g.release(partial)
	pb := partial.parts[0].buf
	at := 0
	for len(all) > 0 {
		// Take spans in order while they fit, never binding one device
		// buffer twice (views of one storage share it).
		var bound [sumsqSlots]*wgpu.Buffer
		a := args{}.u(sumsqChunk, 0)
		groups, slots := 0, 0
		for ; slots < sumsqSlots && slots < len(all); slots++ {
			s := all[slots]
			if slices.Contains(bound[:slots], s.bufs[0]) {
				break
			}
			n := groupsFor(s.n, sumsqChunk)
			a = a.u(s.n, s.offs[0], at, groups)
			bound[slots] = s.bufs[0]
			at += n
			groups += n
		}
		a[1] = uint32(slots)
		g.run(kSumSquares, groups, a, bound[0], bound[1], bound[2], bound[3], bound[4], bound[5], pb)
		all = all[slots:]
	}
	raw, err := g.readBytes(copyRange{pb, 0, 4 * uint64(total)})
	if err != nil {
		panic(fmt.Sprintf("gpu: SumSquares: read back: %v", err))
	}
	var sum float64
	for i := range total {
		sum += float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])))
	}
	return sum
}

// hasDuplicate reports whether some storage appears twice.
func hasDuplicate(st []*storage) bool {
	for i, s := range st {
		if slices.Contains(st[:i], s) {
			return true
		}
	}
	return false
}

// AdamWStep applies one AdamW step with PyTorch's semantics, the scalar
// factors computed on the host in float64 as the CPU backend does. A Scale
// of grad pending (the trainer's clipping, see pending.go) is done here:
// the kernel stores grad scaled and steps with the scaled value. Where
// the adapter allows, steps with the same factors wait and run up to
// adamSlots tensors a dispatch (pending.go).
func (g *Backend) AdamWStep(param, grad, m, v backend.Buffer, h backend.AdamW) {
	const op = "AdamWStep"
	pb, gb, mb, vb := g.f32(param, op, "param"), g.f32(grad, op, "grad"), g.f32(m, op, "m"), g.f32(v, op, "v")
	checkSize(op, "grad", gb, pb.n)
	checkSize(op, "m", mb, pb.n)
	checkSize(op, "v", vb, pb.n)
	if h.Step < 1 {
		panic(fmt.Sprintf("gpu: %s: Step is %d, want 1 or more (it is 1-based)", op, h.Step))
	}
	lr, b1, b2 := float64(h.LR), float64(h.Beta1), float64(h.Beta2)
	factors := args{}.f(
		float32(1-lr*float64(h.WeightDecay)),
		float32(lr/(1-math.Pow(b1, float64(h.Step)))),
		float32(math.Sqrt(1-math.Pow(b2, float64(h.Step)))),
		h.Beta1, h.Beta2, float32(1-b1), float32(1-b2), h.Eps)
	ps, rescale := g.takePending(gb, func(p pendingScale) bool { return !p.fill && p.mul == nil && p.rope == nil })
	ss := spans(op, pb.n, operand{"param", pb, 1}, operand{"grad", gb, 1}, operand{"m", mb, 1}, operand{"v", vb, 1})
	if st := []*storage{pb.st, gb.st, mb.st, vb.st}; g.groupsAdamW() && len(ss) == 1 && !hasDuplicate(st) {
		// Waits to share a dispatch with the next tensors' steps
		// (pending.go): n, offsets, then decay, gscale, rescale.
		s := ss[0]
		slot := append(args{}.u(s.n, s.offs[0], s.offs[1], s.offs[2], s.offs[3]), factors[0]).f(ps.c).u(bit(rescale))
		g.deferAdamW(factors[1:], slot, s.bufs, st)
		return
	}
	factors = factors.f(ps.c).u(bit(rescale))
	for _, s := range spans(op, pb.n, operand{"param", pb, 1}, operand{"grad", gb, 1}, operand{"m", mb, 1}, operand{"v", vb, 1}) {
		a := append(args{}.u(s.n, s.offs[0], s.offs[1], s.offs[2], s.offs[3]), factors...)
		g.run(kAdamW, groupsFor(s.n, 256), a, s.bufs...)
	}
}
