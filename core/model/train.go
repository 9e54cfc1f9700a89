package model

import (
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/backend"
)

// layerActs holds what one decoder block's backward needs from its forward
// (the block's input lives in trainPass.xIn).
type layerActs struct {
	h1, q, k, v, att, o, xMid, h2, gate, up, act, down backend.Buffer
	// With QKNorm, qRaw and kRaw are the projections' outputs and q, k
	// their per-head norms (then rotated); qRawH, kRawH, qH, kH view them
	// as one head per row. With PostNorms, oN and downN are the sublayer
	// outputs after their post-norms. nil where unused.
	qRaw, kRaw, qRawH, kRawH, qH, kH backend.Buffer
	oN, downN                        backend.Buffer
	// kAll, vAll hold each sequence's prefix keys/values followed by its
	// tokens' when a PrefixHook is set; nil otherwise.
	kAll, vAll backend.Buffer
	// Per-sequence views made once with the workspace, so that steps do
	// not allocate: the prefix and token rows of kAll/vAll and the rows of
	// k/v. Empty without a prefix.
	kPre, vPre, kTok, vTok, kSeq, vSeq []backend.Buffer
}

// trainPass is the workspace of a training forward/backward over B
// sequences. It is kept between steps of the same shape so steady-state
// training allocates neither backend memory nor Go heap in this package.
type trainPass struct {
	B, T    int // batch and real tokens per sequence
	virtual int // prompt-tuning tokens before each sequence
	prefix  int // prefix-tuning positions before each sequence
	rows    int // rows per sequence: virtual + T
	// checkpointing keeps one shared activation set (layers has one
	// entry) and recomputes each block before its backward.
	checkpointing bool
	chunkRows     int // rows of logits the head computes at a time
	// shareOut: no layer reads its o or down back in backward (no block
	// hooks, no post-norms), so every layer writes both into outTmp.
	// shareAct: no down projection has hooks, whose backward would need
	// its input, so every layer's act is actTmp. At SmolLM-135M's shape
	// (batch 4 x 256) the two save 330 MiB of the activations.
	shareOut, shareAct bool
	outTmp, actTmp     backend.Buffer
	pos                []int32
	targets            []int32   // per row, virtual rows included
	weights            []float32 // per row; 0 on virtual rows
	xIn                []backend.Buffer
	layers             []layerActs
	xOut               backend.Buffer // final residual stream
	hF                 backend.Buffer // after the final norm
	// logits and dlogits are one chunk of rows [chunkRows, Vocab].
	logits, dlogits backend.Buffer
	chunks          []headChunk
	// gradient scratch
	dx, dh, dq, dk, dv, datt, dact, dgate, dup, dhook, hookOut backend.Buffer
	dkAll, dvAll, dpk, dpv, dEmb                               backend.Buffer
	// QKNorm: the gradients of the projections' outputs and head views of
	// them and of dq, dk. PostNorms: dpost, the gradient of a sublayer's
	// output before its post-norm. nil where unused.
	dqRaw, dkRaw, dqRawH, dkRawH, dqH, dkH backend.Buffer
	dpost                                  backend.Buffer
	// pk, pv hold every layer's prefix keys/values [Layers*prefix, KVDim],
	// so a recomputed block reuses them instead of asking the PrefixHook
	// again (a projection hook restarts its pass at layer 0).
	pk, pv             backend.Buffer
	pkLayer, pvLayer   []backend.Buffer
	dkPre, dvPre       []backend.Buffer // per sequence: prefix rows of dkAll/dvAll
	dkTok, dvTok       []backend.Buffer // per sequence: token rows of dkAll/dvAll
	dkSeq, dvSeq       []backend.Buffer // per sequence: rows of dk/dv
	xVirt, xTok, dVirt []backend.Buffer // per sequence: virtual and token rows of xIn[0], virtual rows of dx
}

// seqViews returns, for each of n sequences laid out every stride rows,
// a view of count rows of cols columns starting at row off of the sequence.
func seqViews(b backend.Backend, buf backend.Buffer, n, stride, off, count, cols int) []backend.Buffer {
	out := make([]backend.Buffer, n)
	for s := range out {
		out[s] = b.View(buf, (s*stride+off)*cols, count, cols)
	}
	return out
}

func (m *Model) newTrainPass(B, T, virtual, prefix int, checkpointing bool, chunkRows int) *trainPass {
	b, c := m.Backend, m.Config
	rows := virtual + T
	R := B * rows
	shareOut, shareAct := m.sharedActivations()
	p := &trainPass{B: B, T: T, virtual: virtual, prefix: prefix, rows: rows, checkpointing: checkpointing,
		chunkRows: chunkRows, shareOut: shareOut, shareAct: shareAct,
		pos: make([]int32, R), targets: make([]int32, R), weights: make([]float32, R)}
	for r := range p.pos {
		p.pos[r] = int32(prefix + r%rows)
	}
	z := func(n, cols int) backend.Buffer { return b.Zeros(n, cols) }
	keys := prefix + rows
	kvDim := c.KVDim()
	p.xIn = make([]backend.Buffer, c.Layers)
	for i := range p.xIn {
		p.xIn[i] = z(R, c.Dim)
	}
	sets := c.Layers
	if checkpointing {
		sets = 1
	}
	if shareOut {
		p.outTmp = z(R, c.Dim)
	}
	if shareAct {
		p.actTmp = z(R, c.FFN)
	}
	p.layers = make([]layerActs, sets)
	for i := range p.layers {
		a := layerActs{
			h1: z(R, c.Dim), q: z(R, c.QDim()), k: z(R, kvDim), v: z(R, kvDim),
			att: z(R, c.QDim()), o: p.outTmp, xMid: z(R, c.Dim), h2: z(R, c.Dim),
			gate: z(R, c.FFN), up: z(R, c.FFN), act: p.actTmp, down: p.outTmp,
		}
		if !shareOut {
			a.o, a.down = z(R, c.Dim), z(R, c.Dim)
		}
		if !shareAct {
			a.act = z(R, c.FFN)
		}
		if c.QKNorm {
			a.qRaw, a.kRaw = z(R, c.QDim()), z(R, kvDim)
			a.qRawH, a.kRawH = b.View(a.qRaw, 0, R*c.Heads, c.HeadDim), b.View(a.kRaw, 0, R*c.KVHeads, c.HeadDim)
			a.qH, a.kH = b.View(a.q, 0, R*c.Heads, c.HeadDim), b.View(a.k, 0, R*c.KVHeads, c.HeadDim)
		}
		if c.PostNorms {
			a.oN, a.downN = z(R, c.Dim), z(R, c.Dim)
		}
		if prefix > 0 {
			a.kAll, a.vAll = z(B*keys, kvDim), z(B*keys, kvDim)
			a.kPre, a.vPre = seqViews(b, a.kAll, B, keys, 0, prefix, kvDim), seqViews(b, a.vAll, B, keys, 0, prefix, kvDim)
			a.kTok, a.vTok = seqViews(b, a.kAll, B, keys, prefix, rows, kvDim), seqViews(b, a.vAll, B, keys, prefix, rows, kvDim)
			a.kSeq, a.vSeq = seqViews(b, a.k, B, rows, 0, rows, kvDim), seqViews(b, a.v, B, rows, 0, rows, kvDim)
		}
		p.layers[i] = a
	}
	p.xOut, p.hF = z(R, c.Dim), z(R, c.Dim)
	p.logits, p.dlogits = z(chunkRows, c.Vocab), z(chunkRows, c.Vocab)
	p.dx, p.dh, p.dhook, p.hookOut = z(R, c.Dim), z(R, c.Dim), z(R, c.Dim), z(R, c.Dim)
	p.chunks = m.headChunks(p)
	p.dq, p.dk, p.dv, p.datt = z(R, c.QDim()), z(R, kvDim), z(R, kvDim), z(R, c.QDim())
	p.dact, p.dgate, p.dup = z(R, c.FFN), z(R, c.FFN), z(R, c.FFN)
	if c.QKNorm {
		p.dqRaw, p.dkRaw = z(R, c.QDim()), z(R, kvDim)
		p.dqRawH, p.dkRawH = b.View(p.dqRaw, 0, R*c.Heads, c.HeadDim), b.View(p.dkRaw, 0, R*c.KVHeads, c.HeadDim)
		p.dqH, p.dkH = b.View(p.dq, 0, R*c.Heads, c.HeadDim), b.View(p.dk, 0, R*c.KVHeads, c.HeadDim)
	}
	if c.PostNorms {
		p.dpost = z(R, c.Dim)
	}
	if prefix > 0 {
		p.dkAll, p.dvAll = z(B*keys, kvDim), z(B*keys, kvDim)
		p.dpk, p.dpv = z(prefix, kvDim), z(prefix, kvDim)
		p.pk, p.pv = z(c.Layers*prefix, kvDim), z(c.Layers*prefix, kvDim)
		p.pkLayer = seqViews(b, p.pk, c.Layers, prefix, 0, prefix, kvDim)
		p.pvLayer = seqViews(b, p.pv, c.Layers, prefix, 0, prefix, kvDim)
		p.dkPre, p.dvPre = seqViews(b, p.dkAll, B, keys, 0, prefix, kvDim), seqViews(b, p.dvAll, B, keys, 0, prefix, kvDim)
		p.dkTok, p.dvTok = seqViews(b, p.dkAll, B, keys, prefix, rows, kvDim), seqViews(b, p.dvAll, B, keys, prefix, rows, kvDim)
		p.dkSeq, p.dvSeq = seqViews(b, p.dk, B, rows, 0, rows, kvDim), seqViews(b, p.dv, B, rows, 0, rows, kvDim)
	}
	if virtual > 0 {
		p.dEmb = z(virtual, c.Dim)
		p.xVirt = seqViews(b, p.xIn[0], B, rows, 0, virtual, c.Dim)
		p.xTok = seqViews(b, p.xIn[0], B, rows, virtual, T, c.Dim)
		p.dVirt = seqViews(b, p.dx, B, rows, 0, virtual, c.Dim)
	}
	return p
}

// buffers lists the buffers the workspace owns (views excluded).
func (p *trainPass) buffers() []backend.Buffer {
	out := []backend.Buffer{p.xOut, p.hF, p.logits, p.dlogits, p.dx, p.dh, p.dq, p.dk, p.dv, p.datt, p.dact, p.dgate, p.dup, p.dhook, p.hookOut,
		p.dkAll, p.dvAll, p.pk, p.pv, p.dpk, p.dpv, p.dEmb, p.dqRaw, p.dkRaw, p.dpost}
	out = append(out, p.xIn...)
	out = append(out, p.outTmp, p.actTmp)
	for _, l := range p.layers {
		out = append(out, l.h1, l.q, l.k, l.v, l.att, l.xMid, l.h2, l.gate, l.up, l.kAll, l.vAll,
			l.qRaw, l.kRaw, l.oN, l.downN)
		if !p.shareOut {
			out = append(out, l.o, l.down)
		}
		if !p.shareAct {
			out = append(out, l.act)
		}
	}
	return out
}

// sharedActivations reports which forward results no backward reads
// back, so that every layer can write them into one buffer: o and down
// (shareOut) unless a layer has a block hook or the model post-norms,
// act (shareAct) unless a down projection has hooks, whose backward is
// given its input.
func (m *Model) sharedActivations() (shareOut, shareAct bool) {
	shareOut, shareAct = !m.Config.PostNorms, true
	for i := range m.Layers {
		l := &m.Layers[i]
		if l.AttnOut != nil || l.FFNOut != nil {
			shareOut = false
		}
		if l.Down != nil && len(l.Down.Hooks()) > 0 {
			shareAct = false
		}
	}
	return shareOut, shareAct
}

// acts returns the activation set block li records into.
func (p *trainPass) acts(li int) *layerActs {
	if p.checkpointing {
		return &p.layers[0]
	}
	return &p.layers[li]
}

// pass returns the cached workspace for a B x T batch.
func (m *Model) pass(B, T int) *trainPass {
	virtual, prefix := 0, 0
	if m.Prompt != nil {
		virtual = m.Prompt.Virtual()
	}
	if m.Prefix != nil {
		prefix = m.Prefix.Len()
	}
	chunk := m.logitChunkRows(B * (virtual + T))
	shareOut, shareAct := m.sharedActivations()
	if p := m.train; p != nil && p.B == B && p.T == T && p.virtual == virtual && p.prefix == prefix &&
		p.checkpointing == m.Checkpointing && p.chunkRows == chunk && p.shareOut == shareOut && p.shareAct == shareAct {
		return p
	}
	m.FreeTrainingState()
	m.train = m.newTrainPass(B, T, virtual, prefix, m.Checkpointing, chunk)
	return m.train
}

// FreeTrainingState releases the activation workspace kept between
// training steps.
func (m *Model) FreeTrainingState() {
	if m.train == nil {
		return
	}
	for _, buf := range m.train.buffers() {
		if buf != nil {
			m.Backend.Free(buf)
		}
	}
	m.train = nil
}

// TrainingStateBytes is the size of the backend buffers the training
// workspace holds between steps (activations, gradient scratch and one
// chunk of logits); 0 before the first step or after FreeTrainingState.
// Adapters' own scratch is not included.
func (m *Model) TrainingStateBytes() int64 {
	if m.train == nil {
		return 0
	}
	var n int64
	for _, buf := range m.train.buffers() {
		if buf != nil {
			n += 4 * buf.Shape().Numel() // every workspace buffer is F32
		}
	}
	return n
}

// TokenBatch is a batch of B rows of T tokens with next-token targets and
// per-position loss weights (0 excludes a position).
type TokenBatch struct {
	B, T    int
	IDs     []int32
	Targets []int32
	Weights []float32
}

func (m *Model) checkBatch(tb TokenBatch) error {
	R := tb.B * tb.T
	switch {
	case tb.B <= 0 || tb.T <= 0:
		return fmt.Errorf("batch %dx%d is empty", tb.B, tb.T)
	case tb.T+m.reserved() > m.Config.Context:
		return fmt.Errorf("sequence length %d (+%d virtual/prefix positions) exceeds the context of %d", tb.T, m.reserved(), m.Config.Context)
	case len(tb.IDs) != R || len(tb.Targets) != R || (tb.Weights != nil && len(tb.Weights) != R):
		return fmt.Errorf("batch %dx%d has %d ids, %d targets, %d weights", tb.B, tb.T, len(tb.IDs), len(tb.Targets), len(tb.Weights))
	}
	if err := m.checkIDs(tb.IDs); err != nil {
		return err
	}
	for i, t := range tb.Targets {
		if (tb.Weights == nil || tb.Weights[i] != 0) && (t < 0 || int(t) >= m.Config.Vocab) {
			return fmt.Errorf("target %d at row %d is outside the vocabulary of %d", t, i, m.Config.Vocab)
		}
	}
	return nil
}

// trainForward runs the batch through the decoder blocks and the final
// norm, keeping what backward needs (with checkpointing, only each block's
// input). The head runs later, chunk by chunk, from p.hF.
func (m *Model) trainForward(tb TokenBatch) *trainPass {
	b, c := m.Backend, m.Config
	p := m.pass(tb.B, tb.T)
	for s := 0; s < tb.B; s++ {
		row := s * p.rows
		for t := 0; t < p.rows; t++ {
			r := row + t
			if t < p.virtual {
				p.targets[r], p.weights[r] = 0, 0
				continue
			}
			i := s*tb.T + t - p.virtual
			p.targets[r], p.weights[r] = tb.Targets[i], 1
			if tb.Weights != nil {
				p.weights[r] = tb.Weights[i]
			}
		}
	}
	if p.virtual == 0 {
		b.Embedding(p.xIn[0], m.Embed, tb.IDs)
		m.scaleEmbedding(p.xIn[0])
	} else {
		// Virtual tokens are embeddings already: only the real tokens'
		// are scaled, as PEFT's inputs_embeds are.
		for s := 0; s < tb.B; s++ {
			m.Prompt.Forward(b, p.xVirt[s])
			b.Embedding(p.xTok[s], m.Embed, tb.IDs[s*tb.T:(s+1)*tb.T])
			m.scaleEmbedding(p.xTok[s])
		}
	}
	for li := range m.Layers {
		if p.prefix > 0 {
			m.Prefix.Forward(b, li, p.pkLayer[li], p.pvLayer[li])
		}
		next := p.xOut
		if li+1 < len(m.Layers) {
			next = p.xIn[li+1]
		}
		m.blockForward(p, li, next)
	}
	b.RMSNorm(p.hF, p.xOut, m.OutNorm, c.NormEps)
	return p
}

// BatchLoss returns the weighted sum of next-token negative log-likelihoods
// of the batch, without gradients. A diverged model gives NaN or Inf, not an
// error: errors are for invalid batches.
func (m *Model) BatchLoss(tb TokenBatch) (float64, error) {
	if err := m.checkBatch(tb); err != nil {
		return 0, fmt.Errorf("loss: %w", err)
	}
	return m.headLoss(m.trainForward(tb)), nil
}

// LossAndGrad runs forward and backward on one batch. It returns the
// weighted sum of next-token negative log-likelihoods and accumulates
// gradScale times its gradient into the gradient buffers of the trainable
// parameters that hooks (adapters) own. Frozen weights get no gradient.
// A NaN or Inf loss is returned as it is, with no gradient accumulated.
//
// With Checkpointing set the gradients are the same, bit for bit, as
// without: the recomputed blocks run the same operations on the same
// inputs.
func (m *Model) LossAndGrad(tb TokenBatch, gradScale float32) (float64, error) {
	if err := m.checkBatch(tb); err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	b, c := m.Backend, m.Config
	p := m.trainForward(tb)
	if len(m.Output.hooks) > 0 {
		// The head's backward gives an adapted lm_head its gradient chunk
		// by chunk, before the whole loss is known: check it first.
		if loss := m.headLoss(p); !finite(loss) {
			return loss, nil
		}
	}
	loss := m.headGrad(p, gradScale)
	if !finite(loss) {
		// Backward would only spread the NaN; the caller sees the loss and
		// stops (the trainer keeps its last good checkpoint).
		return loss, nil
	}
	zero(b, p.dx)
	b.RMSNormBackward(p.dx, nil, p.dh, p.xOut, m.OutNorm, c.NormEps)
	for li := len(m.Layers) - 1; li >= 0; li-- {
		if p.checkpointing {
			m.replayHooks(li)
			m.blockForward(p, li, nil)
		}
		m.blockBackward(p, li)
	}
	if p.virtual > 0 {
		// p.dx is the gradient of the embeddings; the virtual rows of every
		// sequence share the prompt's parameters.
		zero(b, p.dEmb)
		for s := 0; s < tb.B; s++ {
			b.Add(p.dEmb, p.dEmb, p.dVirt[s])
		}
		m.Prompt.Backward(b, p.dEmb)
	}
	return loss, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// zero clears an F32 buffer.
func zero(b backend.Backend, buf backend.Buffer) { b.Scale(buf, buf, 0) }

// hookGrad returns the gradient of a sublayer's output given dy, the
// gradient after its block hook: dy itself without a hook, else the hook's
// input gradient, computed into scratch.
func hookGrad(b backend.Backend, hook BlockHook, scratch, dy, x backend.Buffer) backend.Buffer {
	if hook == nil {
		return dy
	}
	zero(b, scratch)
	hook.Backward(b, scratch, dy, x)
	return scratch
}
