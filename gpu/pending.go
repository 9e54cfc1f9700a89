package gpu

import "github.com/gogpu/wgpu"

// A training step scales buffers in place right before the one operation
// that reads them next: the model zeroes a gradient (Scale by 0) before a
// matrix product or the attention backward adds into it, and the trainer
// scales every gradient by the clipping factor before its AdamW step.
// Each such Scale was a dispatch of its own. Instead, Scale(x, x, c) is
// kept pending, and the next operation on x either folds it in (a MatMul
// or AttentionBackward that accumulates into x writes it instead when c
// is 0; AdamWStep scales the gradient as it reads it and stores it
// scaled) or, being any other dispatch that binds x's device buffer, a
// read-back, an upload, a sync or freeing x, records it first, in the
// order the Scales came. Folding a Scale by 0 into an overwrite also
// clears a NaN or Inf x held, as zeroing means; the recorded Scale
// computes 0 * x like the CPU.

// pendingScale is a Scale(b, b, c) not yet recorded.
type pendingScale struct {
	b *buffer
	c float32
}

// deferScale keeps Scale(b, b, c) pending, after recording any pending
// Scale on the same storage so that two never stack.
func (g *Backend) deferScale(b *buffer, c float32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recordPendingLocked(func(p *buffer) bool { return p.st == b.st })
	g.pending = append(g.pending, pendingScale{b, c})
}

// takePending removes and returns the factor of the pending Scale of
// exactly b, when it is the only one pending on b's storage and fold
// accepts its factor, for an operation that folds it in.
func (g *Backend) takePending(b *buffer, fold func(c float32) bool) (float32, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	at := -1
	for i, p := range g.pending {
		if p.b.st != b.st {
			continue
		}
		if at >= 0 || p.b.off != b.off || p.b.n != b.n {
			return 0, false
		}
		at = i
	}
	if at < 0 || !fold(g.pending[at].c) {
		return 0, false
	}
	c := g.pending[at].c
	g.pending = append(g.pending[:at], g.pending[at+1:]...)
	return c, true
}

// recordPendingFor records, in order, the pending Scales whose storage
// has a part among bufs.
func (g *Backend) recordPendingFor(bufs []*wgpu.Buffer) {
	if len(g.pending) == 0 {
		return
	}
	g.recordPendingLocked(func(p *buffer) bool {
		for _, pt := range p.st.parts {
			for _, b := range bufs {
				if pt.buf == b {
					return true
				}
			}
		}
		return false
	})
}

// recordPendingLocked records, in order, the pending Scales of the
// buffers match picks and forgets them; they are taken off the list
// first, so recording them does not find them again.
func (g *Backend) recordPendingLocked(match func(*buffer) bool) {
	var due []pendingScale
	keep := g.pending[:0]
	for _, p := range g.pending {
		if match(p.b) {
			due = append(due, p)
		} else {
			keep = append(keep, p)
		}
	}
	clear(g.pending[len(keep):])
	g.pending = keep
	for _, p := range due {
		for _, s := range spans("Scale", p.b.n, operand{"dst", p.b, 1}, operand{"x", p.b, 1}) {
			g.runLocked(kAxpby, groupsFor(s.n, 256), args{}.u(s.n, s.offs[0], s.offs[1]).f(0, p.c), s.bufs[0], s.bufs[1])
		}
	}
}

// recordAllPendingLocked records every pending Scale, before work that
// does not go through run (uploads, read-backs, a sync).
func (g *Backend) recordAllPendingLocked() {
	if len(g.pending) > 0 {
		g.recordPendingLocked(func(*buffer) bool { return true })
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
		g.recordPendingLocked(func(p *buffer) bool { return p.st == st })
	}
}
