package gpu

import (
	"slices"

	"github.com/gogpu/wgpu"
)

// A training step scales buffers in place right before the one operation
// that reads them next: the model zeroes a gradient (Scale by 0) before a
// matrix product or the attention backward adds into it, and the trainer
// scales every gradient by the clipping factor before its AdamW step.
// Each such Scale was a dispatch of its own. Instead, Scale(x, x, c) is
// kept pending, and the next operation on x either folds it in (a MatMul
// or AttentionBackward that accumulates into x writes it instead when c
// is 0; AdamWStep scales the gradient as it reads it and stores it
// scaled) or, being any other dispatch that binds x's device buffer, a
// read-back of or upload to x, a sync or freeing x, records it first, in
// the order the Scales came. Folding a Scale by 0 into an overwrite also
// clears a NaN or Inf x held, as zeroing means; the recorded Scale
// computes 0 * x like the CPU.

//
// The trainer clears each gradient by copying a buffer of zeros into it
// before the step's first product adds into it. Such a Copy, from a
// buffer the backend knows holds zeros (made by Zeros and bound by no
// dispatch since, see knownZero), is kept pending the same way, as a
// fill with 0: folded like a Scale by 0, recorded as a fill.

// pendingScale is a Scale(b, b, c), or with fill a Copy of zeros into b,
// or with mul a Mul(b, b, mul) of two buffers of one size, not yet
// recorded.
type pendingScale struct {
	b    *buffer
	c    float32
	fill bool
	mul  *buffer
	rope *ropeWork  // a rotation of b instead (ApplyRoPE)
	adam *adamGroup // AdamW steps instead, b nil
}

// storages returns the storages p reads or writes.
func (p *pendingScale) storages() []*storage {
	switch {
	case p.adam != nil:
		return p.adam.st
	case p.mul != nil:
		return []*storage{p.b.st, p.mul.st}
	}
	return []*storage{p.b.st}
}

// touches reports whether p reads or writes storage st.
func (p *pendingScale) touches(st *storage) bool {
	return slices.Contains(p.storages(), st)
}

// The trainer steps its tensors one after the other with the same AdamW
// factors. On an adapter with storage bindings for adamSlots tensors (4
// each, and the arguments), a step of a tensor held in one part waits,
// and the steps that follow with the same factors join it, up to
// adamSlots, in one dispatch (adamw_group.wgsl).

// adamSlots is how many tensors one adamw_group dispatch steps.
const adamSlots = 7

// adamGroup is pending AdamW steps: shared holds the factors all share
// (stepsize .. eps), slots each tensor's words, bufs its p, g, m, v.
type adamGroup struct {
	shared args
	slots  []args
	bufs   []*wgpu.Buffer
	st     []*storage
}

// groupsAdamW reports whether the adapter binds enough storage buffers
// for adamw_group.
func (g *Backend) groupsAdamW() bool {
	return g.limits.MaxStorageBuffersPerShaderStage >= 1+4*adamSlots
}

// deferAdamW adds one tensor's step to the last pending group when it
// shares its factors and has room, else starts a group; what is pending
// on the tensor's storages is recorded first, so the group runs after it.
func (g *Backend) deferAdamW(shared, slot args, bufs []*wgpu.Buffer, st []*storage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recordPendingLocked(func(p *pendingScale) bool {
		for _, s := range st {
			if p.touches(s) {
				return true
			}
		}
		return false
	})
	if n := len(g.pending); n > 0 {
		if ag := g.pending[n-1].adam; ag != nil && len(ag.slots) < adamSlots && slices.Equal(ag.shared, shared) {
			ag.slots = append(ag.slots, slot)
			ag.bufs = append(ag.bufs, bufs...)
			ag.st = append(ag.st, st...)
			return
		}
	}
	g.pending = append(g.pending, pendingScale{adam: &adamGroup{shared: shared, slots: []args{slot}, bufs: bufs, st: st}})
}

// LoRA's dropout backward masks its input gradient in place and adds it
// into the layer's: Mul(dxd, dxd, mask), then Add(dx, dx, dxd). The Mul
// is kept pending like a Scale and the Add does both (muladd.wgsl).
// It stays pending also while a dispatch binds neither dxd nor mask.

// A layer rotates q and then k by RoPE at the same positions (and the
// backward dq and dk): a rotation of a buffer held in one part waits, and
// the next one with the same rows, positions, frequencies, style and sign
// on another storage runs both in one dispatch (rope.wgsl's PAIR).

// ropeWork is one pending rotation: the single-part dispatch's arguments
// (rows, cols, off, then what a partner must share) and its thread count.
type ropeWork struct {
	x       *buffer
	buf     *wgpu.Buffer
	args    args
	threads int
}

// deferRoPE pairs w with the pending rotation it matches, recording both,
// or keeps it pending.
func (g *Backend) deferRoPE(w *ropeWork) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, p := range g.pending {
		o := p.rope
		if o == nil || o.x.st == w.x.st || o.args[0] != w.args[0] || !slices.Equal(o.args[3:], w.args[3:]) {
			continue
		}
		g.pending = append(g.pending[:i], g.pending[i+1:]...)
		a := append(slices.Clone(o.args), w.args[1], w.args[2])
		g.runLocked(kRoPEPair, groupsFor(o.threads+w.threads, 256), a, o.buf, w.buf)
		return
	}
	g.recordPendingLocked(func(p *pendingScale) bool { return p.touches(w.x.st) })
	g.pending = append(g.pending, pendingScale{b: w.x, rope: w})
}

// deferMul keeps Mul(b, b, m) pending, after recording what is pending
// on either storage.
func (g *Backend) deferMul(b, m *buffer) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recordPendingLocked(func(p *pendingScale) bool { return p.touches(b.st) || p.touches(m.st) })
	g.pending = append(g.pending, pendingScale{b: b, mul: m})
}

// deferScale keeps Scale(b, b, c) pending, after recording any pending
// Scale on the same storage so that two never stack.
func (g *Backend) deferScale(b *buffer, c float32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recordPendingLocked(func(p *pendingScale) bool { return p.touches(b.st) })
	g.pending = append(g.pending, pendingScale{b: b, c: c})
}

// deferZeroCopy keeps Copy(dst, src) pending as a fill of dst with 0 when
// every part of src it reads is known to hold zeros, and reports whether
// it did.
func (g *Backend) deferZeroCopy(dst, src *buffer) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range spans("Copy", src.n, operand{"src", src, 1}) {
		if !g.knownZero[s.bufs[0]] {
			return false
		}
	}
	// Work pending on src (a Scale by NaN, say) may change it yet.
	for _, p := range g.pending {
		if p.touches(src.st) {
			return false
		}
	}
	g.recordPendingLocked(func(p *pendingScale) bool { return p.touches(dst.st) })
	g.pending = append(g.pending, pendingScale{b: dst, fill: true})
	return true
}

// markZero notes that the parts of st hold zeros (Zeros, after its fill).
func (g *Backend) markZero(st *storage) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range st.parts {
		g.knownZero[p.buf] = true
	}
}

// unmarkZeroLocked forgets that bufs hold zeros: a dispatch binds them
// (every binding may be written), an upload writes one, or it is freed.
func (g *Backend) unmarkZeroLocked(bufs ...*wgpu.Buffer) {
	if len(g.knownZero) == 0 {
		return
	}
	for _, b := range bufs {
		delete(g.knownZero, b)
	}
}

// takePending removes and returns the factor of the pending Scale (or
// zero fill, factor 0) of exactly b, when it is the only one pending on
// b's storage and fold accepts it, for an operation that folds it in.
func (g *Backend) takePending(b *buffer, fold func(p pendingScale) bool) (pendingScale, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	at := -1
	for i, p := range g.pending {
		if !p.touches(b.st) {
			continue
		}
		if at >= 0 || p.adam != nil || p.b.st != b.st || p.b.off != b.off || p.b.n != b.n {
			return pendingScale{}, false
		}
		at = i
	}
	if at < 0 || !fold(g.pending[at]) {
		return pendingScale{}, false
	}
	p := g.pending[at]
	g.pending = append(g.pending[:at], g.pending[at+1:]...)
	return p, true
}

// recordPendingFor records, in order, the pending Scales whose storage
// has a part among bufs.
func (g *Backend) recordPendingFor(bufs []*wgpu.Buffer) {
	if len(g.pending) == 0 {
		return
	}
	bound := func(st *storage) bool {
		for _, pt := range st.parts {
			if slices.Contains(bufs, pt.buf) {
				return true
			}
		}
		return false
	}
	g.recordPendingLocked(func(p *pendingScale) bool {
		return slices.ContainsFunc(p.storages(), bound)
	})
}

// recordPendingLocked records, in order, the pending Scales of the
// buffers match picks and forgets them; they are taken off the list
// first, so recording them does not find them again.
func (g *Backend) recordPendingLocked(match func(*pendingScale) bool) {
	var due []pendingScale
	keep := g.pending[:0]
	for _, p := range g.pending {
		if match(&p) {
			due = append(due, p)
		} else {
			keep = append(keep, p)
		}
	}
	clear(g.pending[len(keep):])
	g.pending = keep
	for _, p := range due {
		if ag := p.adam; ag != nil {
			a := args{}.u(len(ag.slots))
			a = append(a, ag.shared...)
			groups := 0
			for _, s := range ag.slots {
				n := groupsFor(int(s[0]), 256)
				a = append(a, s[:5]...)
				a = a.u(groups)
				a = append(a, s[5:]...)
				groups += n
			}
			bufs := make([]*wgpu.Buffer, 4*adamSlots)
			copy(bufs, ag.bufs)
			g.runLocked(kAdamWGroup, groups, a, bufs...)
			continue
		}
		if p.rope != nil {
			g.runLocked(kRoPE, groupsFor(p.rope.threads, 256), p.rope.args, p.rope.buf)
			continue
		}
		if p.mul != nil {
			for _, s := range spans("Mul", p.b.n, operand{"dst", p.b, 1}, operand{"a", p.b, 1}, operand{"b", p.mul, 1}) {
				a := args{}.u(s.n, 1, s.offs[0], s.offs[1], s.offs[2], 1, 0, s.start)
				g.runLocked(kBinary, groupsFor(s.n, 256), a, s.bufs[0], s.bufs[1], s.bufs[2])
			}
			continue
		}
		if p.fill {
			for _, s := range spans("Copy", p.b.n, operand{"dst", p.b, 1}) {
				g.runLocked(kFill, groupsFor(s.n, 256), args{}.u(s.offs[0], s.n).f(0), s.bufs[0])
			}
			continue
		}
		for _, s := range spans("Scale", p.b.n, operand{"dst", p.b, 1}, operand{"x", p.b, 1}) {
			g.runLocked(kAxpby, groupsFor(s.n, 256), args{}.u(s.n, s.offs[0], s.offs[1]).f(0, p.c), s.bufs[0], s.bufs[1])
		}
	}
}

// recordAllPendingLocked records every pending Scale, before a sync or
// close. An upload or a read-back records only those of the buffers it
// touches (recordPendingFor): the model uploads dropout masks and reads
// the loss back between a gradient's zeroing and its first product.
func (g *Backend) recordAllPendingLocked() {
	if len(g.pending) > 0 {
		g.recordPendingLocked(func(*pendingScale) bool { return true })
	}
}

// recordPendingOfLocked records the pending Scales of a storage about to
// be freed rather than forgetting them, though nothing can read it any
// more: on lavapipe, a buffer freed with only an upload to it recorded
// since the last submit is destroyed while the upload still writes to it
// and the driver crashes (Write then Free crashes the same way); the
// dispatch keeps the buffer in use as an unfolded Scale did.
func (g *Backend) recordPendingOfLocked(st *storage) {
	if len(g.pending) > 0 {
		g.recordPendingLocked(func(p *pendingScale) bool { return p.touches(st) })
	}
}
