package peft

import (
	"math"
	"math/rand/v2"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
)

// loraWeights is one adapter's pair of matrices on one linear layer:
// A [r, In] and B [Out, r], with their gradients, all F32 on the backend.
// The layer computes y = base(x) + scaling · B(A(dropout(x))), or DoRA's
// rescaled form when dora is set.
type loraWeights struct {
	adapter string
	layer   *loraLayer
	r       int
	alpha   float64
	scaling float64
	dropout float64

	A, B, dA, dB backend.Buffer
	merged       bool

	// dora holds the magnitude of a DoRA adapter (use_dora); nil for LoRA.
	dora *doraState
	// init0A and init0B are the initial A and B of an initialisation that
	// moved s·B₀·A₀ out of the base weight (PiSSA, OLoRA), kept on the
	// host in the model's layout for restoring the base and for saving
	// the adapter converted to plain LoRA.
	init0A, init0B []float32

	// What Forward keeps for Backward, reallocated when the row count
	// changes: ax = A·x' where x' is x after dropout.
	rows    int
	dropped bool           // the last Forward applied dropout
	hostMsk []float32      // dropout mask on the host, reused
	mask    backend.Buffer // [rows, In]: 0 or 1/(1-p)
	xd      backend.Buffer // [rows, In]: x ⊙ mask
	ax      backend.Buffer // [rows, r]
	gax     backend.Buffer // [rows, r]: gradient with respect to ax
	dxd     backend.Buffer // [rows, In]: gradient with respect to xd

	// sub is the gathered sub-batch of a mixed-adapter pass (see
	// Manager.SetRowAdapters); nil in an ordinary pass.
	sub *subBatch
}

// loraLayer is the hook installed on one model.Linear. It serves every
// adapter that targets the layer and adds the terms of the active ones.
type loraLayer struct {
	mgr     *Manager
	lin     *model.Linear
	weights map[string]*loraWeights
	// original is the base weight while Merge has replaced it with an F32
	// copy (non-F32 or tied weights, or a DoRA merge); nil otherwise.
	original backend.Buffer
	// merged lists the adapters folded into the weight, in merge order.
	merged []*loraWeights
	// pass lists the adapters that took part in the last Forward, so that
	// Backward matches it even if the active set changed in between.
	pass []*loraWeights
	// mixed says the last Forward split the rows by SetRowAdapters.
	mixed bool
	// base is x Wᵀ without the bias, kept for DoRA adapters that need it;
	// ones is a column of ones for adding the bias row.
	base, ones backend.Buffer
	// biasRow is a [1, Out] view of biasOf, the layer's bias, made once
	// rather than every pass.
	biasRow, biasOf backend.Buffer
	// pristine is the model's own weight while adapters initialised by
	// PiSSA or OLoRA have replaced it with an F32 residual; mutators are
	// those adapters, in the order they were added.
	pristine backend.Buffer
	mutators []*loraWeights
}

var _ model.LinearHook = (*loraLayer)(nil)

// Forward computes dst = x Wᵀ (+ bias) + Σ scaling · (dropout(x) Aᵀ) Bᵀ over
// the active adapters of this layer that are not merged into W (DoRA
// adapters add their own term), or, while Manager.SetRowAdapters is in
// force, each row block's own adapter.
func (h *loraLayer) Forward(b backend.Backend, l *model.Linear, dst, x backend.Buffer) {
	h.pass, h.mixed = h.pass[:0], false
	mg := h.mgr
	if mg.disabled {
		h.baseForward(b, l, dst, x, rowsOf(x, l.In), false)
		return
	}
	if mg.rowAdapters != nil {
		h.forwardRows(b, l, dst, x)
		return
	}
	rows := rowsOf(x, l.In)
	needBase := false
	for _, name := range mg.active {
		w := h.weights[name]
		if w == nil || w.merged {
			continue
		}
		h.pass = append(h.pass, w)
		if w.dora != nil && !w.willDrop(mg.training, mg.rng) {
			needBase = true
		}
	}
	h.baseForward(b, l, dst, x, rows, needBase)
	for _, w := range h.pass {
		if w.dora != nil {
			w.doraForward(b, dst, x, h.base, rows, mg.training, mg.rng)
		} else {
			w.forward(b, dst, x, rows, mg.training, mg.rng, true)
		}
	}
}

// Backward adds the base's input gradient and, for every adapter of the
// last Forward, accumulates its parameter gradients and adds its input
// gradient.
func (h *loraLayer) Backward(b backend.Backend, l *model.Linear, dx, dy, x backend.Buffer) {
	l.BaseBackward(b, dx, dy)
	for _, w := range h.pass {
		switch {
		case h.mixed:
			w.backwardRows(b, dx, dy, x)
		case w.dora != nil:
			w.doraBackward(b, dx, dy, x)
		default:
			w.backward(b, dx, dy, x, true)
		}
	}
}

// baseForward computes dst = x Wᵀ + bias, keeping x Wᵀ in h.base when
// keep is set. The bias row is added as the product ones·bias, which every
// backend's MatMul supports, rather than by a broadcasting Add. Over
// another adapter's hook it is that hook's output (keep is never set
// there: checkStackable keeps DoRA off such layers).
func (h *loraLayer) baseForward(b backend.Backend, l *model.Linear, dst, x backend.Buffer, rows int, keep bool) {
	if l.Wraps() {
		l.Base(b, dst, x)
		return
	}
	b.MatMul(dst, x, l.Weight, backend.MatMul{TransB: true})
	if keep || l.Bias != nil {
		if h.base == nil || rowsOf(h.base, l.Out) != rows {
			h.freeBase(b)
			h.base = b.Zeros(rows, l.Out)
			h.ones = b.Zeros(rows, 1)
			ones := make([]float32, rows)
			for i := range ones {
				ones[i] = 1
			}
			if err := b.Write(h.ones, 0, ones); err != nil {
				panic("peft: writing ones: " + err.Error()) // our own F32 buffer: a backend bug
			}
		}
	}
	if keep {
		b.Copy(h.base, dst)
	}
	if l.Bias != nil {
		if h.biasOf != l.Bias {
			h.freeBiasRow(b)
			h.biasRow, h.biasOf = b.View(l.Bias, 0, 1, l.Out), l.Bias
		}
		b.MatMul(dst, h.ones, h.biasRow, backend.MatMul{Accumulate: true})
	}
}

// freeBiasRow releases the view of the bias.
func (h *loraLayer) freeBiasRow(b backend.Backend) {
	if h.biasRow != nil {
		b.Free(h.biasRow)
	}
	h.biasRow, h.biasOf = nil, nil
}

// freeBase releases the layer's scratch.
func (h *loraLayer) freeBase(b backend.Backend) {
	for _, buf := range []backend.Buffer{h.base, h.ones} {
		if buf != nil {
			b.Free(buf)
		}
	}
	h.base, h.ones = nil, nil
	h.freeBiasRow(b)
}

// rowsOf returns how many rows of cols elements x holds.
func rowsOf(x backend.Buffer, cols int) int {
	if cols <= 0 {
		return 0
	}
	var n int64
	if c, ok := x.(numeler); ok {
		n = c.Numel()
	} else {
		n = x.Shape().Numel()
	}
	return int(n) / cols
}

// numeler is a Buffer that reports its element count without copying its
// shape (the CPU backend's do), which keeps a training step's hooks free
// of allocations.
type numeler interface{ Numel() int64 }

// willDrop reports whether a forward in this mode applies dropout.
func (w *loraWeights) willDrop(training bool, rng *rand.Rand) bool {
	return training && w.dropout > 0 && rng != nil
}

// prepareInput sizes the scratch for rows rows, draws the dropout mask when
// dropout applies, and returns the input of the adapter branch: x or
// x ⊙ mask.
func (w *loraWeights) prepareInput(b backend.Backend, x backend.Buffer, rows int, training bool, rng *rand.Rand) backend.Buffer {
	in := w.layer.lin.In
	w.dropped = w.willDrop(training, rng)
	w.ensureScratch(b, rows, in)
	if !w.dropped {
		return x
	}
	// Inverted dropout, as torch.nn.Dropout: keep with probability 1-p and
	// scale the kept values by 1/(1-p).
	keep := float32(1 / (1 - w.dropout))
	for i := range w.hostMsk {
		if rng.Float64() < w.dropout {
			w.hostMsk[i] = 0
		} else {
			w.hostMsk[i] = keep
		}
	}
	if err := b.Write(w.mask, 0, w.hostMsk); err != nil {
		panic("peft: writing the dropout mask: " + err.Error()) // our own F32 buffer: a backend bug
	}
	b.Mul(w.xd, x, w.mask)
	return w.xd
}

// forward adds (accumulate) or writes scaling · (x' Aᵀ) Bᵀ into dst.
func (w *loraWeights) forward(b backend.Backend, dst, x backend.Buffer, rows int, training bool, rng *rand.Rand, accumulate bool) {
	src := w.prepareInput(b, x, rows, training, rng)
	b.MatMul(w.ax, src, w.A, backend.MatMul{TransB: true})
	b.MatMul(dst, w.ax, w.B, backend.MatMul{TransB: true, Accumulate: accumulate, Alpha: float32(w.scaling)})
}

// backward uses y_lora = s · (x' Aᵀ) Bᵀ with x' = x ⊙ mask:
// dB += s · dyᵀ ax, g = s · dy B, dA += gᵀ x', dx (+)= (g A) ⊙ mask, added
// when accumulate is set, written otherwise.
func (w *loraWeights) backward(b backend.Backend, dx, dy, x backend.Buffer, accumulate bool) {
	src := x
	if w.dropped {
		src = w.xd
	}
	s := float32(w.scaling)
	b.MatMul(w.dB, dy, w.ax, backend.MatMul{TransA: true, Accumulate: true, Alpha: s})
	b.MatMul(w.gax, dy, w.B, backend.MatMul{Alpha: s})
	b.MatMul(w.dA, w.gax, src, backend.MatMul{TransA: true, Accumulate: true})
	if dx == nil {
		return
	}
	if !w.dropped {
		b.MatMul(dx, w.gax, w.A, backend.MatMul{Accumulate: accumulate})
		return
	}
	if !accumulate {
		b.MatMul(dx, w.gax, w.A, backend.MatMul{})
		b.Mul(dx, dx, w.mask)
		return
	}
	b.MatMul(w.dxd, w.gax, w.A, backend.MatMul{})
	b.Mul(w.dxd, w.dxd, w.mask)
	b.Add(dx, dx, w.dxd)
}

// ensureScratch (re)allocates the per-pass buffers for rows input rows.
func (w *loraWeights) ensureScratch(b backend.Backend, rows, in int) {
	if w.ax != nil && w.rows == rows && (!w.dropped || w.mask != nil) {
		return
	}
	w.freeScratch(b)
	w.rows = rows
	w.ax = b.Zeros(rows, w.r)
	w.gax = b.Zeros(rows, w.r)
	if w.dropped {
		w.mask = b.Zeros(rows, in)
		w.xd = b.Zeros(rows, in)
		w.dxd = b.Zeros(rows, in)
		w.hostMsk = make([]float32, rows*in)
	}
}

func (w *loraWeights) freeScratch(b backend.Backend) {
	for _, buf := range []backend.Buffer{w.ax, w.gax, w.mask, w.xd, w.dxd} {
		if buf != nil {
			b.Free(buf)
		}
	}
	w.ax, w.gax, w.mask, w.xd, w.dxd, w.hostMsk = nil, nil, nil, nil, nil, nil
	w.rows = 0
}

func (w *loraWeights) free(b backend.Backend) {
	w.freeScratch(b)
	if w.dora != nil {
		w.dora.free(b)
		w.dora = nil
	}
	w.sub.free(b)
	w.sub = nil
	for _, buf := range []backend.Buffer{w.A, w.B, w.dA, w.dB} {
		if buf != nil {
			b.Free(buf)
		}
	}
	w.A, w.B, w.dA, w.dB = nil, nil, nil, nil
}

// initialValues draws A [r, in] and B [out, r] as PEFT's
// reset_lora_parameters does for init.
func initialValues(init LoraInit, r, in, out int, rng *rand.Rand) (a, bv []float32) {
	a = make([]float32, r*in)
	bv = make([]float32, out*r)
	// nn.init.kaiming_uniform_(a=√5) on a [fan_out, fan_in] weight:
	// bound = sqrt(6 / ((1 + a²) · fan_in)) = 1/sqrt(fan_in).
	uniform := func(dst []float32, fanIn int) {
		bound := 1 / math.Sqrt(float64(fanIn))
		for i := range dst {
			dst[i] = float32((2*rng.Float64() - 1) * bound)
		}
	}
	switch init {
	case InitGaussian:
		std := 1 / float64(r) // nn.init.normal_(std=1/r)
		for i := range a {
			a[i] = float32(rng.NormFloat64() * std)
		}
	case InitRandom:
		uniform(a, in)
		uniform(bv, r)
	default:
		uniform(a, in)
	}
	return a, bv
}

// upload allocates an F32 buffer of the given shape holding vals.
func upload(b backend.Backend, vals []float32, shape ...int) (backend.Buffer, error) {
	buf := b.Zeros(shape...)
	if err := b.Write(buf, 0, vals); err != nil {
		b.Free(buf)
		return nil, err
	}
	return buf, nil
}
