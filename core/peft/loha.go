package peft

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
)

// LoHa (Hyeon-Woo et al., FedPara, 2021; PEFT's tuners/loha) replaces
// LoRA's product by a Hadamard product of two of them:
//
//	ΔW = alpha/r · (w1_a w1_b) ⊙ (w2_a w2_b)
//
// with w1_a, w2_a [out, r] and w1_b, w2_b [r, in] (PEFT's hada_w1_a ...
// hada_w2_b), so ΔW can reach rank r² with the parameters of a rank-2r
// LoRA.
//
// graft never forms ΔW to apply it. The Hadamard product of two rank-r
// products is one rank-r² product, ΔW = s·A'B', with the face-splitting
// products A'[o, (p,q)] = w1_a[o,p]·w2_a[o,q] and B'[(p,q), i] =
// w1_b[p,i]·w2_b[q,i]; so the layer runs like a LoRA of rank r²:
// x ΔWᵀ = s·(x B'ᵀ) A'ᵀ, at (in+out)·r² per row instead of in·out, and
// A', B' cost r³·(in+out) to build. They are built with two constant 0/1
// matrices J1, J2 [r, r²] (J1[p', (p,q)] = [p = p'], J2[q', (p,q)] =
// [q = q']): A' = (w1_a J1) ⊙ (w2_a J2), B' = (J1ᵀ w1_b) ⊙ (J2ᵀ w2_b).

// PeftTypeLoHa is the peft_type of LoHa adapters.
const PeftTypeLoHa = "LOHA"

// lohaFactors are PEFT's LoHa parameter names for a Linear layer, in its
// order.
var lohaFactors = []string{"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"}

// LoHaConfig is PEFT's LoHaConfig: its JSON form is the adapter_config.json
// PEFT writes. Start from DefaultConfig[LoHaConfig]: the zero values of R,
// Alpha and InitWeights are not PEFT's defaults.
type LoHaConfig struct {
	LycorisConfig `peft:"type=LOHA"`
	// InitWeights (PEFT default true) draws w1_a, w1_b and w2_a from
	// Kaiming-uniform and sets w2_b = 0, so the adapter starts as a no-op;
	// false draws w2_b too (for tests).
	InitWeights bool `json:"init_weights" peft:"default=true"`
}

// Validate checks the config for values PEFT rejects and for features
// graft does not implement.
func (c *LoHaConfig) Validate() error { return validateConfig(c) }

// MarshalJSON writes the config as PEFT writes adapter_config.json: every
// field of PEFT's LoHaConfig with keys sorted.
func (c LoHaConfig) MarshalJSON() ([]byte, error) { return encodeConfig(&c) }

// UnmarshalJSON reads an adapter_config.json, ignoring unknown keys; use
// ParseConfig to learn which keys were ignored.
func (c *LoHaConfig) UnmarshalJSON(data []byte) (err error) {
	*c, _, err = ParseConfig[LoHaConfig](data)
	return err
}

// resolveLoHa validates cfg, fills in PEFT's defaults and plans the
// factors of every targeted layer.
func resolveLoHa(m *model.Model, cfg LoHaConfig) (LoHaConfig, []lycoPlan, error) {
	if err := cfg.Validate(); err != nil {
		return cfg, nil, err
	}
	cfg.PeftType = PeftTypeLoHa
	cfg.TaskType = cmp.Or(cfg.TaskType, TaskCausalLM)
	targets, lins, err := cfg.selectLinears(m, defaultTargets) // PEFT's LoHa mapping is LoRA's
	if err != nil {
		return cfg, nil, fmt.Errorf("loha: %w", err)
	}
	cfg.TargetConfig = targets
	plans := make([]lycoPlan, len(lins))
	for i, lin := range lins {
		r, alpha, err := cfg.rankAlpha(lin.Name, cfg.R, cfg.Alpha)
		if err != nil {
			return cfg, nil, fmt.Errorf("loha: %w", err)
		}
		plans[i] = lohaPlan(lin, r, alpha)
	}
	return cfg, plans, nil
}

// lohaPlan gives a layer PEFT's LoHa factors for nn.Linear: w1_a, w2_a
// [out, r] and w1_b, w2_b [r, in].
func lohaPlan(lin *model.Linear, r int, alpha float64) lycoPlan {
	return lycoPlan{lin: lin, r: r, alpha: alpha, factors: []lycoShape{
		{"hada_w1_a", lin.Out, r, true},
		{"hada_w1_b", r, lin.In, false},
		{"hada_w2_a", lin.Out, r, true},
		{"hada_w2_b", r, lin.In, false},
	}}
}

// newLoHaAdapter returns an empty adapter for a resolved config.
func newLoHaAdapter(m *model.Model, cfg LoHaConfig) *lycoAdapter {
	return &lycoAdapter{
		m: m, peftType: PeftTypeLoHa, factorNames: lohaFactors,
		rankDropout: cfg.RankDropout, moduleDropout: cfg.ModuleDropout,
		scaleRankDropout: true, // PEFT's LoHa always divides by the mask's mean
		config: func(inferenceMode bool) ([]byte, error) {
			c := cfg
			c.InferenceMode = inferenceMode
			return EncodeConfig(c)
		},
	}
}

// NewLoHa attaches a new LoHa adapter to the layers of m that cfg targets,
// initialised as PEFT does: w1_a, w1_b and w2_a from Kaiming-uniform
// (a=√5, bound 1/sqrt(columns)) and w2_b zero, or also Kaiming-uniform
// with init_weights false; rng draws them. No targeted layer may already
// have a hook (another adapter).
func NewLoHa(m *model.Model, cfg LoHaConfig, rng *rand.Rand) (Adapter, error) {
	if rng == nil {
		return nil, errors.New("loha: NewLoHa needs a random source for the initial factors")
	}
	resolved, plans, err := resolveLoHa(m, cfg)
	if err != nil {
		return nil, err
	}
	ad := newLoHaAdapter(m, resolved)
	return buildLyco(ad, plans, func(p lycoPlan, f lycoShape) []float32 {
		v := make([]float32, f.rows*f.cols)
		if f.suffix != "hada_w2_b" || !resolved.InitWeights {
			kaimingUniform(v, f.cols, rng)
		}
		return v
	}, ad.newLoHaDelta)
}

// loadLoHa reads a LoHa adapter directory.
func loadLoHa(m *model.Model, src Source) (Adapter, []string, error) {
	cfg, cfgPath, warnings, err := readConfig[LoHaConfig](src)
	if err != nil {
		return nil, nil, err
	}
	resolved, plans, err := resolveLoHa(m, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("peft config %s: %w", cfgPath, err)
	}
	ad := newLoHaAdapter(m, resolved)
	a, err := loadLyco(ad, src, plans, ad.newLoHaDelta)
	if err != nil {
		return nil, nil, err
	}
	return a, prefixWarnings(cfgPath, warnings), nil
}

// lohaScratch holds the products of every layer of one shape: shared,
// since each pass rebuilds them from the layer's factors.
type lohaScratch struct {
	out, in, r2    int
	j1, j2         backend.Buffer // [r, r²] constants
	a1, a2, ap, ta backend.Buffer // [out, r²]: w1_a J1, w2_a J2, A', scratch
	b1, b2, bp, tb backend.Buffer // [r², in]: J1ᵀ w1_b, J2ᵀ w2_b, B', scratch
	dap            backend.Buffer // [out, r²]: ∂L/∂A'
	dbp            backend.Buffer // [r², in]: ∂L/∂B'
	// owner is the layer whose factors the products hold.
	owner *lohaDelta
}

func (s *lohaScratch) free(b backend.Backend) {
	freeAll(b, s.j1, s.j2, s.a1, s.a2, s.ap, s.ta, s.b1, s.b2, s.bp, s.tb, s.dap, s.dbp)
	*s = lohaScratch{}
}

// lohaDelta is the deltaMethod of one LoHa layer.
type lohaDelta struct {
	w1a, w1b, w2a, w2b *lycoParam
	s                  float32
	sh                 *lohaScratch
	rows               int
	h, gh              backend.Buffer // [rows, r²]: x B'ᵀ and its gradient
}

// newLoHaDelta makes a layer's deltaMethod, sharing scratch with the
// layers of the same shape and rank.
func (ad *lycoAdapter) newLoHaDelta(l *lycoLayer) (deltaMethod, error) {
	b := ad.b
	r, out, in := l.r, l.lin.Out, l.lin.In
	var sh *lohaScratch
	for _, s := range ad.shared {
		if ls, ok := s.(*lohaScratch); ok && ls.out == out && ls.in == in && ls.r2 == r*r {
			sh = ls
			break
		}
	}
	if sh == nil {
		r2 := r * r
		j1, j2 := make([]float32, r*r2), make([]float32, r*r2)
		for p := range r {
			for q := range r {
				j1[p*r2+p*r+q] = 1
				j2[q*r2+p*r+q] = 1
			}
		}
		sh = &lohaScratch{out: out, in: in, r2: r2}
		ad.shared = append(ad.shared, sh)
		var err error
		if sh.j1, err = upload(b, j1, r, r2); err != nil {
			return nil, err
		}
		if sh.j2, err = upload(b, j2, r, r2); err != nil {
			return nil, err
		}
		sh.a1, sh.a2, sh.ap, sh.ta, sh.dap = b.Zeros(out, r2), b.Zeros(out, r2), b.Zeros(out, r2), b.Zeros(out, r2), b.Zeros(out, r2)
		sh.b1, sh.b2, sh.bp, sh.tb, sh.dbp = b.Zeros(r2, in), b.Zeros(r2, in), b.Zeros(r2, in), b.Zeros(r2, in), b.Zeros(r2, in)
	}
	return &lohaDelta{w1a: l.param("hada_w1_a"), w1b: l.param("hada_w1_b"), w2a: l.param("hada_w2_a"), w2b: l.param("hada_w2_b"),
		s: l.scale(), sh: sh}, nil
}

// build computes A' and B' from the layer's factors.
func (d *lohaDelta) build(b backend.Backend) {
	sh := d.sh
	b.MatMul(sh.a1, d.w1a.value, sh.j1, backend.MatMul{})
	b.MatMul(sh.a2, d.w2a.value, sh.j2, backend.MatMul{})
	b.Mul(sh.ap, sh.a1, sh.a2)
	b.MatMul(sh.b1, sh.j1, d.w1b.value, backend.MatMul{TransA: true})
	b.MatMul(sh.b2, sh.j2, d.w2b.value, backend.MatMul{TransA: true})
	b.Mul(sh.bp, sh.b1, sh.b2)
	sh.owner = d
}

// forward computes dst (+)= s·(x B'ᵀ) A'ᵀ, keeping h = x B'ᵀ.
func (d *lohaDelta) forward(b backend.Backend, dst, x backend.Buffer, rows int, accumulate bool) {
	d.build(b)
	if d.h == nil || d.rows != rows {
		freeAll(b, d.h, d.gh)
		d.rows = rows
		d.h, d.gh = b.Zeros(rows, d.sh.r2), b.Zeros(rows, d.sh.r2)
	}
	b.MatMul(d.h, x, d.sh.bp, backend.MatMul{TransB: true})
	b.MatMul(dst, d.h, d.sh.ap, backend.MatMul{TransB: true, Accumulate: accumulate, Alpha: d.s})
}

// backward uses y = s·h A'ᵀ with h = x B'ᵀ: ∂A' = s·gᵀh, gh = s·g A',
// ∂B' = ghᵀx, dx += gh B'; then through the face-splitting products:
// ∂w1_a += (∂A' ⊙ w2_a J2) J1ᵀ, ∂w2_a += (∂A' ⊙ w1_a J1) J2ᵀ,
// ∂w1_b += J1 (∂B' ⊙ J2ᵀ w2_b), ∂w2_b += J2 (∂B' ⊙ J1ᵀ w1_b).
func (d *lohaDelta) backward(b backend.Backend, dx, g, x backend.Buffer, rows int) {
	sh := d.sh
	if sh.owner != d {
		d.build(b)
	}
	b.MatMul(sh.dap, g, d.h, backend.MatMul{TransA: true, Alpha: d.s})
	b.MatMul(d.gh, g, sh.ap, backend.MatMul{Alpha: d.s})
	b.MatMul(sh.dbp, d.gh, x, backend.MatMul{TransA: true})
	if dx != nil {
		b.MatMul(dx, d.gh, sh.bp, backend.MatMul{Accumulate: true})
	}
	b.Mul(sh.ta, sh.dap, sh.a2)
	b.MatMul(d.w1a.grad, sh.ta, sh.j1, backend.MatMul{TransB: true, Accumulate: true})
	b.Mul(sh.ta, sh.dap, sh.a1)
	b.MatMul(d.w2a.grad, sh.ta, sh.j2, backend.MatMul{TransB: true, Accumulate: true})
	b.Mul(sh.tb, sh.dbp, sh.b2)
	b.MatMul(d.w1b.grad, sh.j1, sh.tb, backend.MatMul{Accumulate: true})
	b.Mul(sh.tb, sh.dbp, sh.b1)
	b.MatMul(d.w2b.grad, sh.j2, sh.tb, backend.MatMul{Accumulate: true})
}

// addDelta adds s·A'B' into w.
func (d *lohaDelta) addDelta(b backend.Backend, w backend.Buffer) {
	d.build(b)
	b.MatMul(w, d.sh.ap, d.sh.bp, backend.MatMul{Accumulate: true, Alpha: d.s})
}

func (d *lohaDelta) free(b backend.Backend) {
	freeAll(b, d.h, d.gh)
	d.h, d.gh = nil, nil
}

func init() {
	Register(Method{
		Name: "loha", PeftType: PeftTypeLoHa, Mergeable: true,
		Summary:  "LoHa: the Hadamard product of two low-rank products per target projection (LyCORIS)",
		Defaults: map[string]any{"r": 8, "alpha": 16, "target_modules": []string{"q_proj", "v_proj"}},
		LR:       3e-2,
		Flags: map[string]string{"model": "base_model_name_or_path", "r": "r", "alpha": "alpha",
			"dropout": "rank_dropout", "target": "target_modules"},
		New:      newFromConfig(NewLoHa),
		Validate: validateConfigDoc[LoHaConfig],
		Load:     loadLoHa,
	})
}
