package peft

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
)

// LoKr (Yeh et al., 2023; PEFT's tuners/lokr) makes the update a
// Kronecker product of two small factors:
//
//	ΔW = alpha/r · w1 ⊗ w2
//
// with w1 [o1, i1] and w2 [o2, i2], out = o1·o2 and in = i1·i2 split by
// PEFT's factorization(): two factors near the square root (or near
// decompose_factor). A factor is itself a rank-r product, w1 = w1_a w1_b or
// w2 = w2_a w2_b, when r is below half its larger side (w1 only with
// decompose_both), as PEFT decides.
//
// ΔW has no low-rank structure, so each pass forms it (shared scratch,
// rebuilt from the factors) with existing Backend ops and constant 0/1
// matrices: seen as [o1, o2·i1·i2], ΔW = s·1·T2 where the row T2[k, j, l] =
// w2[k, l] is w2 with each row repeated i1 times (T2 = Fᵀ w2, F [o2,
// o2·i1]); seen as [o1·o2·i1, i2], each row is then scaled by U[i, k, j] =
// w1[i, j] (U = Eᵀ w1, E [o1, o1·o2]). The factors' gradients contract
// G = ∂L/∂ΔW the same way back: ∂w1 = E ((G ⊙ T2) 1), ∂w2 = F (1ᵀ (G ⊙ U)).
// For GGUF q/k projections, whose rows are in Meta's RoPE order, ΔW's rows
// are gathered into that order (an Embedding lookup) and G's back.

// PeftTypeLoKr is the peft_type of LoKr adapters.
const PeftTypeLoKr = "LOKR"

// lokrFactors are PEFT's LoKr parameter names for a Linear layer, in its
// order.
var lokrFactors = []string{"lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b"}

// LoKrInit is PEFT's init_weights for LoKr: true, false or "lycoris".
type LoKrInit string

const (
	// LoKrInitDefault (JSON true) sets w1 (or w1_a) to zero and draws the
	// other factors from Kaiming-uniform, so the adapter starts as a
	// no-op.
	LoKrInitDefault LoKrInit = ""
	// LoKrInitLycoris ("lycoris") sets w2 (or w2_b) to zero instead, as
	// the LyCORIS repository does.
	LoKrInitLycoris LoKrInit = "lycoris"
	// LoKrInitRandom (JSON false) draws every factor (for tests).
	LoKrInitRandom LoKrInit = "false"
)

// MarshalJSON writes true, false or "lycoris".
func (i LoKrInit) MarshalJSON() ([]byte, error) { return marshalInit(i) }

// UnmarshalJSON reads a boolean or a string.
func (i *LoKrInit) UnmarshalJSON(data []byte) error {
	return unmarshalInit(data, i, `true, false or "lycoris"`)
}

// LoKrConfig is PEFT's LoKrConfig: its JSON form is the adapter_config.json
// PEFT writes. Start from DefaultConfig[LoKrConfig]: the zero values of R,
// Alpha and DecomposeFactor are not PEFT's defaults.
type LoKrConfig struct {
	LycorisConfig `peft:"type=LOKR"`
	// DecomposeBoth also makes w1 a rank-r product when r is below half
	// its larger side (PEFT default false: only w2 may be).
	DecomposeBoth bool `json:"decompose_both"`
	// DecomposeFactor is where factorization() splits the layer sizes: a
	// factor that divides them is used as is, -1 (PEFT's default) splits
	// near the square root.
	DecomposeFactor int `json:"decompose_factor" peft:"default=-1"`
	// RankDropoutScale rescales the rows rank dropout keeps by out/kept
	// (PEFT default false).
	RankDropoutScale bool `json:"rank_dropout_scale"`
	// InitWeights chooses the initialisation (see LoKrInit).
	InitWeights LoKrInit `json:"init_weights"`
}

// Validate checks the config for values PEFT rejects and for features
// graft does not implement.
func (c *LoKrConfig) Validate() error { return validateConfig(c) }

func (c *LoKrConfig) check() error {
	switch c.InitWeights {
	case LoKrInitDefault, "true", LoKrInitLycoris, LoKrInitRandom:
		return nil
	}
	return fmt.Errorf("init_weights %q is not true, false or \"lycoris\"", string(c.InitWeights))
}

// MarshalJSON writes the config as PEFT writes adapter_config.json: every
// field of PEFT's LoKrConfig with keys sorted.
func (c LoKrConfig) MarshalJSON() ([]byte, error) { return encodeConfig(&c) }

// UnmarshalJSON reads an adapter_config.json, ignoring unknown keys; use
// ParseConfig to learn which keys were ignored.
func (c *LoKrConfig) UnmarshalJSON(data []byte) (err error) {
	*c, _, err = ParseConfig[LoKrConfig](data)
	return err
}

// factorization is PEFT's (and LyCORIS's) split of dimension into two
// factors m·n: factor itself when it divides dimension; otherwise, going up
// from m = 1, the divisors as long as m+n does not grow and m stays within
// factor (-1: no limit, which ends near the square root), the smaller
// first.
func factorization(dimension, factor int) (m, n int) {
	if factor > 0 && dimension%factor == 0 {
		return factor, dimension / factor
	}
	if factor == -1 {
		factor = dimension
	}
	m, n = 1, dimension
	length := m + n
	for m < n {
		newM := m + 1
		for dimension%newM != 0 {
			newM++
		}
		newN := dimension / newM
		if newM+newN > length || newM > factor {
			break
		}
		m, n = newM, newN
	}
	if m > n {
		m, n = n, m
	}
	return m, n
}

// lokrPlan gives a layer PEFT's LoKr factors for nn.Linear:
// w1 [o1, i1] or w1_a [o1, r], w1_b [r, i1], and w2 [o2, i2] or w2_a
// [o2, r], w2_b [r, i2], with (i1, i2) = factorization(in) and (o1, o2) =
// factorization(out).
func lokrPlan(lin *model.Linear, r int, alpha float64, decomposeBoth bool, decomposeFactor int) lycoPlan {
	i1, i2 := factorization(lin.In, decomposeFactor)
	o1, o2 := factorization(lin.Out, decomposeFactor)
	rank := float64(r)
	useW1 := !(decomposeBoth && rank < float64(max(o1, i1))/2)
	useW2 := !(rank < float64(max(o2, i2))/2)
	p := lycoPlan{lin: lin, r: r, alpha: alpha}
	if useW1 {
		p.factors = append(p.factors, lycoShape{"lokr_w1", o1, i1, false})
	} else {
		p.factors = append(p.factors, lycoShape{"lokr_w1_a", o1, r, false}, lycoShape{"lokr_w1_b", r, i1, false})
	}
	if useW2 {
		p.factors = append(p.factors, lycoShape{"lokr_w2", o2, i2, false})
	} else {
		p.factors = append(p.factors, lycoShape{"lokr_w2_a", o2, r, false}, lycoShape{"lokr_w2_b", r, i2, false})
	}
	return p
}

// resolveLoKr validates cfg, fills in PEFT's defaults and plans the
// factors of every targeted layer.
func resolveLoKr(m *model.Model, cfg LoKrConfig) (LoKrConfig, []lycoPlan, error) {
	if err := cfg.Validate(); err != nil {
		return cfg, nil, err
	}
	cfg.PeftType = PeftTypeLoKr
	cfg.TaskType = cmp.Or(cfg.TaskType, TaskCausalLM)
	targets, lins, err := cfg.selectLinears(m, defaultTargets) // PEFT's LoKr mapping is LoRA's
	if err != nil {
		return cfg, nil, fmt.Errorf("lokr: %w", err)
	}
	cfg.TargetConfig = targets
	plans := make([]lycoPlan, len(lins))
	for i, lin := range lins {
		r, alpha, err := cfg.rankAlpha(lin.Name, cfg.R, cfg.Alpha)
		if err != nil {
			return cfg, nil, fmt.Errorf("lokr: %w", err)
		}
		plans[i] = lokrPlan(lin, r, alpha, cfg.DecomposeBoth, cfg.DecomposeFactor)
	}
	return cfg, plans, nil
}

// newLoKrAdapter returns an empty adapter for a resolved config.
func newLoKrAdapter(m *model.Model, cfg LoKrConfig) *lycoAdapter {
	return &lycoAdapter{
		m: m, peftType: PeftTypeLoKr, factorNames: lokrFactors,
		rankDropout: cfg.RankDropout, moduleDropout: cfg.ModuleDropout,
		scaleRankDropout: cfg.RankDropoutScale,
		config: func(inferenceMode bool) ([]byte, error) {
			c := cfg
			c.InferenceMode = inferenceMode
			return EncodeConfig(c)
		},
	}
}

// NewLoKr attaches a new LoKr adapter to the layers of m that cfg targets,
// initialised as PEFT does: by default w1 (or w1_a) zero and the other
// factors from Kaiming-uniform (a=√5, bound 1/sqrt(columns)); "lycoris"
// zeroes w2 (or w2_b) instead; false draws every factor. rng draws them.
func NewLoKr(m *model.Model, cfg LoKrConfig, rng *rand.Rand) (Adapter, error) {
	if rng == nil {
		return nil, errors.New("lokr: NewLoKr needs a random source for the initial factors")
	}
	resolved, plans, err := resolveLoKr(m, cfg)
	if err != nil {
		return nil, err
	}
	zero := map[string]bool{}
	switch resolved.InitWeights {
	case LoKrInitDefault, "true":
		zero["lokr_w1"], zero["lokr_w1_a"] = true, true
	case LoKrInitLycoris:
		zero["lokr_w2"], zero["lokr_w2_b"] = true, true
	}
	ad := newLoKrAdapter(m, resolved)
	return buildLyco(ad, plans, func(p lycoPlan, f lycoShape) []float32 {
		v := make([]float32, f.rows*f.cols)
		if !zero[f.suffix] {
			kaimingUniform(v, f.cols, rng)
		}
		return v
	}, ad.newLoKrDelta)
}

// loadLoKr reads a LoKr adapter directory.
func loadLoKr(m *model.Model, src Source) (Adapter, []string, error) {
	cfg, cfgPath, warnings, err := readConfig[LoKrConfig](src)
	if err != nil {
		return nil, nil, err
	}
	resolved, plans, err := resolveLoKr(m, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("peft config %s: %w", cfgPath, err)
	}
	ad := newLoKrAdapter(m, resolved)
	a, err := loadLyco(ad, src, plans, ad.newLoKrDelta)
	if err != nil {
		return nil, nil, err
	}
	return a, prefixWarnings(cfgPath, warnings), nil
}

// lokrScratch holds ΔW and the intermediate products of every layer whose
// factors have one shape: shared, since each pass rebuilds them.
type lokrScratch struct {
	o1, i1, o2, i2 int
	e              backend.Buffer // [o1, o1·o2]: E[i, i·o2+k] = 1
	f              backend.Buffer // [o2, o2·i1]: F[k, k·i1+j] = 1
	onesO1, onesI2 backend.Buffer // [o1, 1], [i2, 1]
	// w1, w2 are the products of decomposed factors and dw1, dw2 their
	// gradients (allocated when some layer decomposes).
	w1, dw1, w2, dw2 backend.Buffer
	t2, t2Row        backend.Buffer // [o2·i1, i2] and as [1, o2·i1·i2]
	u, uCol          backend.Buffer // [o1·o2, i1] and as [o1·o2·i1, 1]
	// delta is ΔW in Hugging Face's row order, seen as [o1, o2·i1·i2]
	// (deltaA) and [o1·o2·i1, i2] (deltaR); Backward overwrites it with G.
	delta, deltaA, deltaR backend.Buffer
	work, workA, workR    backend.Buffer // scratch of delta's shape
	perm                  backend.Buffer // [out, in]: ΔW or G in Meta's order
	q, qv                 backend.Buffer // [o1·o2·i1, 1] and as [o1·o2, i1]
	v1, v1v               backend.Buffer // [1, o2·i1·i2] and as [o2·i1, i2]
	// owner is the layer whose ΔW delta (and perm) hold.
	owner *lokrDelta
}

func (s *lokrScratch) free(b backend.Backend) {
	freeAll(b, s.t2Row, s.uCol, s.deltaA, s.deltaR, s.workA, s.workR, s.qv, s.v1v) // views first
	freeAll(b, s.e, s.f, s.onesO1, s.onesI2, s.w1, s.dw1, s.w2, s.dw2, s.t2, s.u, s.delta, s.work, s.perm, s.q, s.v1)
	*s = lokrScratch{}
}

// lokrDelta is the deltaMethod of one LoKr layer.
type lokrDelta struct {
	// Either w1 or w1a and w1b, either w2 or w2a and w2b.
	w1, w1a, w1b, w2, w2a, w2b *lycoParam
	s                          float32
	sh                         *lokrScratch
	// permIDs[o] is the Hugging Face row of the layer's row o, invIDs the
	// inverse; nil when the layer's rows are in Hugging Face's order.
	permIDs, invIDs []int32
}

// newLoKrDelta makes a layer's deltaMethod, sharing scratch with the
// layers whose factors have the same shapes.
func (ad *lycoAdapter) newLoKrDelta(l *lycoLayer) (deltaMethod, error) {
	b := ad.b
	d := &lokrDelta{w1: l.param("lokr_w1"), w1a: l.param("lokr_w1_a"), w1b: l.param("lokr_w1_b"),
		w2: l.param("lokr_w2"), w2a: l.param("lokr_w2_a"), w2b: l.param("lokr_w2_b"), s: l.scale()}
	var o1, i1, o2, i2 int
	if d.w1 != nil {
		o1, i1 = d.w1.rows, d.w1.cols
	} else {
		o1, i1 = d.w1a.rows, d.w1b.cols
	}
	if d.w2 != nil {
		o2, i2 = d.w2.rows, d.w2.cols
	} else {
		o2, i2 = d.w2a.rows, d.w2b.cols
	}
	for _, s := range ad.shared {
		if ks, ok := s.(*lokrScratch); ok && ks.o1 == o1 && ks.i1 == i1 && ks.o2 == o2 && ks.i2 == i2 {
			d.sh = ks
			break
		}
	}
	if d.sh == nil {
		sh, err := newLoKrScratch(b, o1, i1, o2, i2)
		if err != nil {
			return nil, err
		}
		ad.shared = append(ad.shared, sh)
		d.sh = sh
	}
	sh, out, in := d.sh, l.lin.Out, l.lin.In
	if d.w1 == nil && sh.w1 == nil {
		sh.w1, sh.dw1 = b.Zeros(o1, i1), b.Zeros(o1, i1)
	}
	if d.w2 == nil && sh.w2 == nil {
		sh.w2, sh.dw2 = b.Zeros(o2, i2), b.Zeros(o2, i2)
	}
	if heads := l.lin.RoPEPermuted; heads > 0 {
		idx := make([]float32, out)
		for i := range idx {
			idx[i] = float32(i)
		}
		toHF, err := permuteRoPERows(idx, out, 1, heads, false) // [meta row] = its HF row
		if err != nil {
			return nil, err
		}
		toMeta, err := permuteRoPERows(idx, out, 1, heads, true) // [HF row] = its meta row
		if err != nil {
			return nil, err
		}
		d.permIDs, d.invIDs = make([]int32, out), make([]int32, out)
		for i := range out {
			d.permIDs[i], d.invIDs[i] = int32(toHF[i]), int32(toMeta[i])
		}
		if sh.perm == nil {
			sh.perm = b.Zeros(out, in)
		}
	}
	return d, nil
}

// newLoKrScratch allocates the scratch and constants for factors w1
// [o1, i1] and w2 [o2, i2].
func newLoKrScratch(b backend.Backend, o1, i1, o2, i2 int) (_ *lokrScratch, err error) {
	sh := &lokrScratch{o1: o1, i1: i1, o2: o2, i2: i2}
	defer func() {
		if err != nil {
			sh.free(b)
		}
	}()
	e := make([]float32, o1*o1*o2)
	for i := range o1 {
		for k := range o2 {
			e[i*o1*o2+i*o2+k] = 1
		}
	}
	f := make([]float32, o2*o2*i1)
	for k := range o2 {
		for j := range i1 {
			f[k*o2*i1+k*i1+j] = 1
		}
	}
	ones := make([]float32, max(o1, i2))
	for i := range ones {
		ones[i] = 1
	}
	if sh.e, err = upload(b, e, o1, o1*o2); err != nil {
		return nil, err
	}
	if sh.f, err = upload(b, f, o2, o2*i1); err != nil {
		return nil, err
	}
	if sh.onesO1, err = upload(b, ones[:o1], o1, 1); err != nil {
		return nil, err
	}
	if sh.onesI2, err = upload(b, ones[:i2], i2, 1); err != nil {
		return nil, err
	}
	out, in := o1*o2, i1*i2
	sh.t2, sh.u = b.Zeros(o2*i1, i2), b.Zeros(o1*o2, i1)
	sh.t2Row, sh.uCol = b.View(sh.t2, 0, 1, o2*i1*i2), b.View(sh.u, 0, o1*o2*i1, 1)
	sh.delta, sh.work = b.Zeros(out, in), b.Zeros(out, in)
	sh.deltaA, sh.deltaR = b.View(sh.delta, 0, o1, o2*i1*i2), b.View(sh.delta, 0, o1*o2*i1, i2)
	sh.workA, sh.workR = b.View(sh.work, 0, o1, o2*i1*i2), b.View(sh.work, 0, o1*o2*i1, i2)
	sh.q, sh.v1 = b.Zeros(o1*o2*i1, 1), b.Zeros(1, o2*i1*i2)
	sh.qv, sh.v1v = b.View(sh.q, 0, o1*o2, i1), b.View(sh.v1, 0, o2*i1, i2)
	return sh, nil
}

// build forms ΔW = s·w1 ⊗ w2 in delta and, for a layer in Meta's row
// order, gathers it into perm; it returns the one in the layer's order.
func (d *lokrDelta) build(b backend.Backend) backend.Buffer {
	sh := d.sh
	w1, w2 := d.factor(b, d.w1, d.w1a, d.w1b, sh.w1), d.factor(b, d.w2, d.w2a, d.w2b, sh.w2)
	b.MatMul(sh.t2, sh.f, w2, backend.MatMul{TransA: true})
	b.MatMul(sh.u, sh.e, w1, backend.MatMul{TransA: true})
	b.MatMul(sh.deltaA, sh.onesO1, sh.t2Row, backend.MatMul{Alpha: d.s})
	b.Mul(sh.deltaR, sh.deltaR, sh.uCol)
	sh.owner = d
	if d.permIDs == nil {
		return sh.delta
	}
	b.Embedding(sh.perm, sh.delta, d.permIDs)
	return sh.perm
}

// factor returns a Kronecker factor: whole, or the product a·b formed in
// dst.
func (d *lokrDelta) factor(b backend.Backend, whole, fa, fb *lycoParam, dst backend.Buffer) backend.Buffer {
	if whole != nil {
		return whole.value
	}
	b.MatMul(dst, fa.value, fb.value, backend.MatMul{})
	return dst
}

// layerDelta returns ΔW in the layer's row order, rebuilding it unless
// this layer's is still there.
func (d *lokrDelta) layerDelta(b backend.Backend) backend.Buffer {
	if d.sh.owner != d {
		return d.build(b)
	}
	if d.permIDs != nil {
		return d.sh.perm
	}
	return d.sh.delta
}

// forward computes dst (+)= x ΔWᵀ.
func (d *lokrDelta) forward(b backend.Backend, dst, x backend.Buffer, _ int, accumulate bool) {
	b.MatMul(dst, x, d.build(b), backend.MatMul{TransB: true, Accumulate: accumulate})
}

// backward adds g ΔW into dx, forms G = s·gᵀx (in Hugging Face's row
// order, over ΔW, which is no longer needed) and contracts it into the
// factors' gradients: ∂w1 = E ((G ⊙ T2) 1), ∂w2 = F (1ᵀ (G ⊙ U)), then
// through a decomposed factor's product: ∂a += ∂w bᵀ, ∂b += aᵀ ∂w.
func (d *lokrDelta) backward(b backend.Backend, dx, g, x backend.Buffer, _ int) {
	sh := d.sh
	dw := d.layerDelta(b)
	if dx != nil {
		b.MatMul(dx, g, dw, backend.MatMul{Accumulate: true})
	}
	sh.owner = nil // delta becomes G
	if d.permIDs == nil {
		b.MatMul(sh.delta, g, x, backend.MatMul{TransA: true, Alpha: d.s})
	} else {
		b.MatMul(sh.perm, g, x, backend.MatMul{TransA: true, Alpha: d.s})
		b.Embedding(sh.delta, sh.perm, d.invIDs)
	}
	b.Mul(sh.workA, sh.deltaA, sh.t2Row)
	b.MatMul(sh.q, sh.workR, sh.onesI2, backend.MatMul{})
	d.factorGrad(b, d.w1, d.w1a, d.w1b, sh.dw1, sh.e, sh.qv)
	b.Mul(sh.workR, sh.deltaR, sh.uCol)
	b.MatMul(sh.v1, sh.onesO1, sh.workA, backend.MatMul{TransA: true})
	d.factorGrad(b, d.w2, d.w2a, d.w2b, sh.dw2, sh.f, sh.v1v)
}

// factorGrad accumulates sel·src, the gradient of a Kronecker factor, into
// the whole factor's gradient, or through its product a·b (formed in
// tmp first) into the gradients of a and b.
func (d *lokrDelta) factorGrad(b backend.Backend, whole, fa, fb *lycoParam, tmp, sel, src backend.Buffer) {
	if whole != nil {
		b.MatMul(whole.grad, sel, src, backend.MatMul{Accumulate: true})
		return
	}
	b.MatMul(tmp, sel, src, backend.MatMul{})
	b.MatMul(fa.grad, tmp, fb.value, backend.MatMul{TransB: true, Accumulate: true})
	b.MatMul(fb.grad, fa.value, tmp, backend.MatMul{TransA: true, Accumulate: true})
}

// addDelta adds ΔW into w.
func (d *lokrDelta) addDelta(b backend.Backend, w backend.Buffer) {
	b.Add(w, w, d.build(b))
}

func (d *lokrDelta) free(backend.Backend) {}

func init() {
	Register(Method{
		Name: "lokr", PeftType: PeftTypeLoKr, Mergeable: true,
		Summary:  "LoKr: a Kronecker product of two small factors per target projection (LyCORIS)",
		Defaults: map[string]any{"r": 8, "alpha": 16, "target_modules": []string{"q_proj", "v_proj"}},
		LR:       5e-2,
		Flags: map[string]string{"model": "base_model_name_or_path", "r": "r", "alpha": "alpha",
			"dropout": "rank_dropout", "target": "target_modules"},
		New:      newFromConfig(NewLoKr),
		Validate: validateConfigDoc[LoKrConfig],
		Load:     loadLoKr,
	})
}
