package peft

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
)

// bottleneckAdapter is one Houlsby or Pfeiffer adapter attached to a model:
// a bnSite hook on the attention and/or feed-forward output of every
// adapted block.
type bottleneckAdapter struct {
	m     *model.Model
	cfg   BottleneckConfig // resolved
	act   bnActivation
	width int // bottleneck width
	sites []*bnSite

	training bool
	rng      *rand.Rand

	// Scratch shared by the sites, sized for rows input rows: sites run
	// one after another and keep only pre, act and the dropout mask
	// between their Forward and Backward.
	rows    int
	ones    backend.Buffer // [rows, width] of ones: SiLUMul's multiplier; its first rows entries add biases and sum their gradients
	gup     backend.Buffer // [rows, Dim]: gradient of the up-projection's output
	gact    backend.Buffer // [rows, width]: gradient of the activation
	dpre    backend.Buffer // [rows, width]: gradient of the pre-activation
	spare   backend.Buffer // [rows, width]: SiLUMulBackward's unused output
	hostBuf []float32      // rows·width: host activations
	hostMsk []float32      // rows·Dim: dropout mask on the host
	// onesCol [rows, 1] and onesRow [1, rows] view the first rows ones,
	// made with the scratch so that a pass makes no views.
	onesCol, onesRow backend.Buffer

	unloaded bool
}

// bnSite is the model.BlockHook on one block output: y = h + scaling ·
// dropout(up(f(down(h)))).
type bnSite struct {
	ad    *bottleneckAdapter
	layer int
	attn  bool // the attention output (mh_adapter) rather than the feed-forward output

	wd, bd, wu, bu     backend.Buffer // down [width, Dim] and [width]; up [Dim, width] and [Dim]
	dwd, dbd, dwu, dbu backend.Buffer
	// The biases and their gradients as rows [1, n], viewed once when the
	// weights are built so that a pass makes no views.
	bdRow, buRow, dbdRow, dbuRow backend.Buffer

	// What Forward keeps for Backward, reallocated when the rows change.
	rows    int
	pre     backend.Buffer // [rows, width]: down(h)
	act     backend.Buffer // [rows, width]: f(pre)
	hostPre []float32      // pre on the host, for host activations
	mask    backend.Buffer // [rows, Dim]: 0 or 1/(1-p) when dropped
	dropped bool
}

var _ model.BlockHook = (*bnSite)(nil)

// NewBottleneck attaches a new Houlsby or Pfeiffer bottleneck adapter to m
// and returns it; rng draws the initial weights.
//
// Placement. A Llama block is pre-norm: x1 = x + attn(norm(x)), then
// x2 = x1 + ffn(norm(x1)). The adapter rewrites a sublayer output h before
// its residual add: h → h + scaling · up(f(down(h))). Houlsby adapts both
// the attention output (AdapterHub's mh_adapter) and the feed-forward
// output (output_adapter); Pfeiffer only the feed-forward output. This is
// exactly what AdapterHub computes on Llama (whose layer calls its adapters
// with the block input as residual and no layer norm) for a BnConfig with
// original_ln_before = false, original_ln_after = true (the block's own
// residual added after the adapter), residual_before_ln = true (the
// adapter's residual is h), no new layer norms, is_parallel = false. That
// is DoubleSeqBnConfig's placement; SeqBnConfig's original_ln_before = true
// would feed h + x into the adapter instead, which graft's block hook
// cannot see, so graft's Pfeiffer adapter records original_ln_before =
// false and AdapterHub then reproduces it exactly.
//
// Initialisation. With the default init_weights "mam_adapter" the
// up-projection and both biases start at zero, so the model computes
// exactly what it did before; AdapterHub's own default, "bert", is
// available as BottleneckInitBERT.
//
// The adapter cannot be merged (Merge returns ErrNotMergeable); Unload
// removes its hooks. A block output can hold one adapter at a time.
func NewBottleneck(m *model.Model, cfg BottleneckConfig, rng *rand.Rand) (Adapter, error) {
	cfg, err := cfg.resolved()
	if err != nil {
		return nil, fmt.Errorf("bottleneck adapter: %w", err)
	}
	if rng == nil {
		return nil, errors.New("bottleneck adapter: a random source is needed to initialise the weights")
	}
	dim := m.Config.Dim
	width := bottleneckWidth(dim, cfg.ReductionFactor)
	return buildBottleneck(m, cfg, func(s *bnSite) (wd, bd, wu, bu []float32, err error) {
		wd, bd, wu, bu = bnInitialValues(cfg.InitWeights, width, dim, rng)
		return wd, bd, wu, bu, nil
	})
}

// buildBottleneck installs the adapter's hooks with weights from values;
// on error the model is left as it was.
func buildBottleneck(m *model.Model, cfg BottleneckConfig, values func(s *bnSite) (wd, bd, wu, bu []float32, err error)) (_ Adapter, err error) {
	act, err := lookupActivation(cfg.NonLinearity)
	if err != nil {
		return nil, fmt.Errorf("bottleneck adapter: %w", err)
	}
	dim := m.Config.Dim
	ad := &bottleneckAdapter{m: m, cfg: cfg, act: act, width: bottleneckWidth(dim, cfg.ReductionFactor)}
	for _, l := range cfg.LeaveOut {
		if l >= len(m.Layers) {
			return nil, fmt.Errorf("bottleneck adapter: leave_out layer %d is outside the model's %d layers", l, len(m.Layers))
		}
	}
	ad.sites = bnSitesFor(ad, len(m.Layers))
	if len(ad.sites) == 0 {
		return nil, fmt.Errorf("bottleneck adapter: leave_out %v leaves none of the %d layers to adapt", cfg.LeaveOut, len(m.Layers))
	}
	for _, s := range ad.sites {
		if s.slot() != nil {
			return nil, fmt.Errorf("bottleneck adapter: layer %d's %s output already has a block hook (unload the other adapter first)", s.layer, s.what())
		}
	}
	defer func() {
		if err != nil {
			ad.free()
		}
	}()
	b, w := m.Backend, ad.width
	for _, s := range ad.sites {
		wd, bd, wu, bu, err := values(s)
		if err != nil {
			return nil, err
		}
		for _, p := range []struct {
			dst   *backend.Buffer
			vals  []float32
			shape []int
		}{{&s.wd, wd, []int{w, dim}}, {&s.bd, bd, []int{w}}, {&s.wu, wu, []int{dim, w}}, {&s.bu, bu, []int{dim}}} {
			buf, err := upload(b, p.vals, p.shape...)
			if err != nil {
				return nil, fmt.Errorf("bottleneck adapter: layer %d: %w", s.layer, err)
			}
			*p.dst = buf
		}
		s.dwd, s.dbd, s.dwu, s.dbu = b.Zeros(w, dim), b.Zeros(w), b.Zeros(dim, w), b.Zeros(dim)
		s.bdRow, s.buRow = b.View(s.bd, 0, 1, w), b.View(s.bu, 0, 1, dim)
		s.dbdRow, s.dbuRow = b.View(s.dbd, 0, 1, w), b.View(s.dbu, 0, 1, dim)
	}
	for _, s := range ad.sites {
		*s.slotPtr() = s
	}
	return ad, nil
}

// bnSitesFor lists the sites of every adapted layer, attention first.
func bnSitesFor(ad *bottleneckAdapter, layers int) []*bnSite {
	attn, out := ad.cfg.sites()
	var sites []*bnSite
	for l := range layers {
		if slices.Contains(ad.cfg.LeaveOut, l) {
			continue
		}
		if attn {
			sites = append(sites, &bnSite{ad: ad, layer: l, attn: true})
		}
		if out {
			sites = append(sites, &bnSite{ad: ad, layer: l})
		}
	}
	return sites
}

// slotPtr is the model's hook field this site occupies.
func (s *bnSite) slotPtr() *model.BlockHook {
	l := &s.ad.m.Layers[s.layer]
	if s.attn {
		return &l.AttnOut
	}
	return &l.FFNOut
}

func (s *bnSite) slot() model.BlockHook { return *s.slotPtr() }

func (s *bnSite) what() string {
	if s.attn {
		return "attention"
	}
	return "feed-forward"
}

// bnInitialValues draws one site's down [width, dim] and up [dim, width]
// weights and biases as AdapterHub's Adapter.__init__ does for init.
func bnInitialValues(init string, width, dim int, rng *rand.Rand) (wd, bd, wu, bu []float32) {
	wd, bd = make([]float32, width*dim), make([]float32, width)
	wu, bu = make([]float32, dim*width), make([]float32, dim)
	normal := func(dst []float32, std, bound float64) {
		for i := range dst {
			v := rng.NormFloat64()
			for bound > 0 && math.Abs(v*std) > bound { // truncation by redrawing, as trunc_normal_ samples
				v = rng.NormFloat64()
			}
			dst[i] = float32(v * std)
		}
	}
	switch init {
	case BottleneckInitBERT:
		normal(wd, 0.02, 0)
		normal(wu, 0.02, 0)
	case BottleneckInitHoulsby:
		normal(wd, 0.01, 0.02)
		normal(wu, 0.01, 0.02)
	default: // mam_adapter: kaiming_uniform(a=√5) on down, zeros on up
		bound := 1 / math.Sqrt(float64(dim))
		for i := range wd {
			wd[i] = float32((2*rng.Float64() - 1) * bound)
		}
	}
	return wd, bd, wu, bu
}

func (ad *bottleneckAdapter) PeftType() string { return PeftTypeBottleneck }

// Params returns each site's adapter_down.0.weight, adapter_down.0.bias,
// adapter_up.weight and adapter_up.bias under AdapterHub's tensor names,
// layer by layer, attention before feed-forward. Biases are exempt from
// weight decay, as transformers' Trainer exempts them.
func (ad *bottleneckAdapter) Params() []model.Param {
	if ad.unloaded {
		return nil
	}
	var out []model.Param
	for _, s := range ad.sites {
		out = append(out,
			model.Param{Name: s.tensorName("adapter_down.0.weight"), Value: s.wd, Grad: s.dwd},
			model.Param{Name: s.tensorName("adapter_down.0.bias"), Value: s.bd, Grad: s.dbd, NoDecay: true},
			model.Param{Name: s.tensorName("adapter_up.weight"), Value: s.wu, Grad: s.dwu},
			model.Param{Name: s.tensorName("adapter_up.bias"), Value: s.bu, Grad: s.dbu, NoDecay: true},
		)
	}
	return out
}

// tensorName is AdapterHub's state-dict key of one of the site's tensors.
func (s *bnSite) tensorName(suffix string) string {
	return bnTensorName(s.layer, s.attn, s.ad.cfg.Name, suffix)
}

// bnTensorName builds model.layers.<layer>.<attention|output>_adapters.adapters.<name>.<suffix>.
func bnTensorName(layer int, attn bool, name, suffix string) string {
	loc := "output_adapters"
	if attn {
		loc = "attention_adapters"
	}
	return fmt.Sprintf("model.layers.%d.%s.adapters.%s.%s", layer, loc, name, suffix)
}

// SetTraining turns dropout on the adapter branch on or off.
func (ad *bottleneckAdapter) SetTraining(training bool, rng *rand.Rand) error {
	if training && ad.cfg.Dropout > 0 && rng == nil {
		return errors.New("bottleneck adapter: training with dropout needs a random source")
	}
	ad.training, ad.rng = training, rng
	return nil
}

// Merge always fails: the adapter's nonlinearity cannot be folded into the
// base weights.
func (ad *bottleneckAdapter) Merge() error { return ErrNotMergeable }

// Unload removes the adapter's hooks and frees its buffers.
func (ad *bottleneckAdapter) Unload() error {
	if ad.unloaded {
		return errors.New("bottleneck adapter: already unloaded")
	}
	for _, s := range ad.sites {
		if p := s.slotPtr(); *p == model.BlockHook(s) {
			*p = nil
		}
	}
	ad.free()
	ad.unloaded = true
	return nil
}

func (ad *bottleneckAdapter) free() {
	b := ad.m.Backend
	for _, s := range ad.sites {
		s.freeScratch()
		bnFree(b, s.bdRow, s.buRow, s.dbdRow, s.dbuRow)
		s.bdRow, s.buRow, s.dbdRow, s.dbuRow = nil, nil, nil, nil
		bnFree(b, s.wd, s.bd, s.wu, s.bu, s.dwd, s.dbd, s.dwu, s.dbu)
		s.wd, s.bd, s.wu, s.bu, s.dwd, s.dbd, s.dwu, s.dbu = nil, nil, nil, nil, nil, nil, nil, nil
	}
	ad.freeScratch()
}

func bnFree(b backend.Backend, bufs ...backend.Buffer) {
	for _, buf := range bufs {
		if buf != nil {
			b.Free(buf)
		}
	}
}

// ensureScratch (re)allocates the shared scratch for rows rows.
func (ad *bottleneckAdapter) ensureScratch(rows int) {
	if ad.ones != nil && ad.rows == rows {
		return
	}
	ad.freeScratch()
	b, dim, w := ad.m.Backend, ad.m.Config.Dim, ad.width
	ad.rows = rows
	ad.ones = b.Zeros(rows, w)
	ones := make([]float32, rows*w)
	for i := range ones {
		ones[i] = 1
	}
	if err := b.Write(ad.ones, 0, ones); err != nil {
		panic("peft: writing ones into a new buffer: " + err.Error()) // our own F32 buffer: a backend bug
	}
	ad.onesCol, ad.onesRow = b.View(ad.ones, 0, rows, 1), b.View(ad.ones, 0, 1, rows)
	ad.gup, ad.gact, ad.dpre, ad.spare = b.Zeros(rows, dim), b.Zeros(rows, w), b.Zeros(rows, w), b.Zeros(rows, w)
	ad.hostBuf = make([]float32, rows*w)
	ad.hostMsk = nil
}

func (ad *bottleneckAdapter) freeScratch() {
	bnFree(ad.m.Backend, ad.onesCol, ad.onesRow, ad.ones, ad.gup, ad.gact, ad.dpre, ad.spare)
	ad.onesCol, ad.onesRow, ad.ones, ad.gup, ad.gact, ad.dpre, ad.spare = nil, nil, nil, nil, nil, nil, nil
	ad.hostBuf, ad.hostMsk, ad.rows = nil, nil, 0
}

// ensureScratch (re)allocates what the site keeps from Forward to Backward.
func (s *bnSite) ensureScratch(rows int, dropped bool) {
	if s.pre == nil || s.rows != rows {
		s.freeScratch()
		b, w := s.ad.m.Backend, s.ad.width
		s.rows = rows
		s.pre, s.act = b.Zeros(rows, w), b.Zeros(rows, w)
		if s.ad.act.kind == bnActHost {
			s.hostPre = make([]float32, rows*w)
		}
	}
	if dropped && s.mask == nil {
		s.mask = s.ad.m.Backend.Zeros(rows, s.ad.m.Config.Dim)
	}
}

func (s *bnSite) freeScratch() {
	bnFree(s.ad.m.Backend, s.pre, s.act, s.mask)
	s.pre, s.act, s.mask, s.hostPre, s.rows = nil, nil, nil, nil, 0
}

// Forward computes dst = x + scaling · dropout(f(x Wdᵀ + bd) Wuᵀ + bu).
func (s *bnSite) Forward(b backend.Backend, dst, x backend.Buffer) {
	ad := s.ad
	rows := rowsOf(x, ad.m.Config.Dim)
	s.dropped = ad.training && ad.cfg.Dropout > 0 && ad.rng != nil
	ad.ensureScratch(rows)
	s.ensureScratch(rows, s.dropped)

	// Biases are added as a rank-1 product, ones[rows, 1] · bias[1, n],
	// which is exact, rather than relying on a broadcasting Add.
	b.MatMul(s.pre, x, s.wd, backend.MatMul{TransB: true})
	b.MatMul(s.pre, ad.onesCol, s.bdRow, backend.MatMul{Accumulate: true})
	if err := ad.act.forward(b, s.act, s.pre, ad.ones, s.hostPre, ad.hostBuf); err != nil {
		panic(fmt.Sprintf("peft: bottleneck %s activation: %v", ad.act.name, err)) // our own F32 buffers: a backend bug
	}
	b.MatMul(dst, s.act, s.wu, backend.MatMul{TransB: true})
	b.MatMul(dst, ad.onesCol, s.buRow, backend.MatMul{Accumulate: true})
	if ad.cfg.Scaling != 1 {
		b.Scale(dst, dst, float32(ad.cfg.Scaling))
	}
	if s.dropped {
		s.drawMask()
		b.Mul(dst, dst, s.mask)
	}
	b.Add(dst, dst, x)
}

// drawMask fills the site's mask with inverted dropout: 0 with
// probability p, else 1/(1-p), as torch.nn.Dropout.
func (s *bnSite) drawMask() {
	ad := s.ad
	n := s.rows * ad.m.Config.Dim
	if len(ad.hostMsk) != n {
		ad.hostMsk = make([]float32, n)
	}
	keep := float32(1 / (1 - ad.cfg.Dropout))
	for i := range ad.hostMsk {
		if ad.rng.Float64() < ad.cfg.Dropout {
			ad.hostMsk[i] = 0
		} else {
			ad.hostMsk[i] = keep
		}
	}
	if err := ad.m.Backend.Write(s.mask, 0, ad.hostMsk); err != nil {
		panic("peft: writing the dropout mask: " + err.Error()) // our own F32 buffer: a backend bug
	}
}

// Backward adds dy into dx (the adapter's residual) plus the gradient
// through the bottleneck, and accumulates the four parameter gradients:
// with g = scaling · dy ⊙ mask, dWu += gᵀ·act, dbu += Σrows g,
// dpre = f'(pre) ⊙ (g Wu), dWd += dpreᵀ·x, dbd += Σrows dpre,
// dx += dpre Wd.
func (s *bnSite) Backward(b backend.Backend, dx, dy, x backend.Buffer) {
	ad := s.ad
	dim := ad.m.Config.Dim
	rows := rowsOf(x, dim)
	if s.pre == nil || rows != s.rows || rows != ad.rows {
		panic(fmt.Sprintf("peft: bottleneck Backward on %d rows without a matching Forward", rows))
	}
	if dx != nil {
		b.Add(dx, dx, dy)
	}
	g := dy
	if s.dropped || ad.cfg.Scaling != 1 {
		g = ad.gup
		b.Copy(g, dy)
		if s.dropped {
			b.Mul(g, g, s.mask)
		}
		if ad.cfg.Scaling != 1 {
			b.Scale(g, g, float32(ad.cfg.Scaling))
		}
	}
	b.MatMul(s.dwu, g, s.act, backend.MatMul{TransA: true, Accumulate: true})
	b.MatMul(s.dbuRow, ad.onesRow, g, backend.MatMul{Accumulate: true})
	b.MatMul(ad.gact, g, s.wu, backend.MatMul{})
	if err := ad.act.backward(b, ad.dpre, ad.gact, s.pre, ad.ones, ad.spare, s.hostPre, ad.hostBuf); err != nil {
		panic(fmt.Sprintf("peft: bottleneck %s activation backward: %v", ad.act.name, err)) // a backend bug
	}
	b.MatMul(s.dwd, ad.dpre, x, backend.MatMul{TransA: true, Accumulate: true})
	b.MatMul(s.dbdRow, ad.onesRow, ad.dpre, backend.MatMul{Accumulate: true})
	if dx != nil {
		b.MatMul(dx, ad.dpre, s.wd, backend.MatMul{Accumulate: true})
	}
}
