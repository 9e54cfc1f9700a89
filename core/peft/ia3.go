package peft

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// (IA)³ (Liu et al., 2022) trains one vector per targeted layer that
// rescales activations, as PEFT's IA3 Linear does:
//
//	y = base(x) ⊙ l     l: ia3_l [out, 1], for most targets
//	y = base(x ⊙ l)     l: ia3_l [1, in], for feedforward_modules
//
// The output is scaled after the bias is added, so merging scales the
// bias too (of non-feedforward layers).

// ia3Adapter is one (IA)³ adapter attached to a model.
type ia3Adapter struct {
	m        *model.Model
	b        backend.Backend
	cfg      IA3Config // resolved: defaults filled in, as saved
	layers   []*ia3Layer
	unloaded bool
}

// ia3Layer is the hook on one targeted linear layer.
type ia3Layer struct {
	lin *model.Linear
	ff  bool // feedforward: scales the input
	// l is ia3_l, [out, 1] or (feedforward) [1, in], with its gradient;
	// lRow sees an [out, 1] vector as a row of factors for the output's
	// columns. l of GGUF q/k projections follows their rows' Meta order.
	l, dl, lRow backend.Buffer

	// original and originalBias are the base weight and bias while merged
	// F32 copies replace them.
	original, originalBias backend.Buffer
	merged                 bool

	// What Forward keeps for Backward.
	pass bool
	rows int
	ones backend.Buffer // [rows, 1] of ones, for column sums
	z    backend.Buffer // [rows, out]: base output before scaling
	gz   backend.Buffer // [rows, out]: scratch
	xs   backend.Buffer // [rows, in]: x ⊙ l; scratch in Backward
	dxs  backend.Buffer // [rows, in]: gradient with respect to xs
}

var _ model.LinearHook = (*ia3Layer)(nil)

// NewIA3 attaches a new (IA)³ adapter to the layers of m that cfg
// targets: every ia3_l at 1, so the adapter starts as a no-op, or with
// InitIA3Weights false drawn from N(0, 1) with rng, as PEFT's torch.randn
// (for tests). No targeted layer may already have a hook.
func NewIA3(m *model.Model, cfg IA3Config, rng *rand.Rand) (Adapter, error) {
	if !cfg.InitIA3Weights && rng == nil {
		return nil, errors.New("ia3: init_ia3_weights false draws the vectors at random and needs a random source")
	}
	resolved, lins, ff, err := resolveIA3(m, cfg)
	if err != nil {
		return nil, err
	}
	return buildIA3(m, resolved, lins, ff, func(lin *model.Linear, n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
			if !cfg.InitIA3Weights {
				v[i] = float32(rng.NormFloat64())
			}
		}
		return v
	})
}

// resolveIA3 validates cfg, fills in PEFT's defaults and returns the
// targeted layers and which of them are feedforward.
func resolveIA3(m *model.Model, cfg IA3Config) (IA3Config, []*model.Linear, []bool, error) {
	if err := cfg.Validate(); err != nil {
		return cfg, nil, nil, err
	}
	cfg.PeftType = PeftTypeIA3
	cfg.TaskType = cmp.Or(cfg.TaskType, TaskCausalLM)
	if cfg.FeedforwardModules.IsZero() {
		cfg.FeedforwardModules = TargetNames(ia3DefaultFeedforward...)
	}
	def := ia3DefaultTargets
	if m.Config.Arch == "qwen2" {
		def = ia3DefaultTargetsQwen2
	}
	targets, lins, err := cfg.selectLinears(m, def)
	if err != nil {
		return cfg, nil, nil, fmt.Errorf("ia3: %w", err)
	}
	cfg.TargetConfig = targets
	ff := make([]bool, len(lins))
	for i, l := range lins {
		if ff[i], err = cfg.isFeedforward(l.Name); err != nil {
			return cfg, nil, nil, fmt.Errorf("ia3 config: %w", err)
		}
	}
	return cfg, lins, ff, nil
}

// ia3Shape is ia3_l's shape on a layer: [1, in] for feedforward layers,
// [out, 1] otherwise.
func ia3Shape(lin *model.Linear, ff bool) tensor.Shape {
	if ff {
		return tensor.Shape{1, lin.In}
	}
	return tensor.Shape{lin.Out, 1}
}

// buildIA3 uploads the vectors and installs the hooks; nothing changes
// unless every layer succeeds. values gives each layer's ia3_l of n
// elements (in the layer's row order).
func buildIA3(m *model.Model, cfg IA3Config, lins []*model.Linear, ff []bool, values func(lin *model.Linear, n int) []float32) (_ Adapter, err error) {
	b := m.Backend
	ad := &ia3Adapter{m: m, b: b, cfg: cfg}
	defer func() {
		if err != nil {
			ad.free()
		}
	}()
	for i, lin := range lins {
		l := &ia3Layer{lin: lin, ff: ff[i]}
		ad.layers = append(ad.layers, l)
		shape := ia3Shape(lin, l.ff)
		if l.l, err = upload(b, values(lin, shape[0]*shape[1]), shape...); err != nil {
			return nil, fmt.Errorf("ia3: %s: ia3_l: %w", lin.Name, err)
		}
		l.dl = b.Zeros(shape...)
		if !l.ff {
			l.lRow = b.View(l.l, 0, lin.Out)
		}
	}
	for _, l := range ad.layers {
		l.lin.AddHook(l)
	}
	return ad, nil
}

// ReplayForward does nothing: (IA)³ draws no random numbers, so a Forward
// recomputed under activation checkpointing is the same anyway. Saying so
// lets it share a model with an adapter whose dropout replays (LoHa).
func (l *ia3Layer) ReplayForward() {}

var _ model.ForwardReplayer = (*ia3Layer)(nil)

func (l *ia3Layer) adapterKind() string                     { return "IA3" }
func (l *ia3Layer) mergeState() (anyMerged, allMerged bool) { return l.merged, l.merged }

func (ad *ia3Adapter) PeftType() string { return PeftTypeIA3 }

// Params returns each layer's ia3_l in model order, with PEFT's names.
func (ad *ia3Adapter) Params() []model.Param {
	var out []model.Param
	for _, l := range ad.layers {
		out = append(out, model.Param{Name: vectorName(l.lin.Name, "ia3_l"), Value: l.l, Grad: l.dl})
	}
	return out
}

// SetTraining does nothing: (IA)³ has no dropout.
func (ad *ia3Adapter) SetTraining(bool, *rand.Rand) error { return nil }

// Forward computes dst = base(x) ⊙ l, or base(x ⊙ l) for a feedforward
// layer, or the base alone when merged.
func (l *ia3Layer) Forward(b backend.Backend, lin *model.Linear, dst, x backend.Buffer) {
	l.pass = false
	if l.merged {
		lin.Base(b, dst, x)
		return
	}
	l.ensureScratch(b, rowsOf(x, lin.In))
	if l.ff {
		b.Mul(l.xs, x, l.l)
		lin.Base(b, dst, l.xs)
	} else {
		lin.Base(b, l.z, x)
		b.Mul(dst, l.z, l.lRow)
	}
	l.pass = true
}

// Backward accumulates dl and adds the input gradient:
// output scaling: dl += Σ_rows dy ⊙ z, dx += (l ⊙ dy) W;
// input scaling: g = dy W, dl += Σ_rows g ⊙ x, dx += g ⊙ l.
// W stands for the base beneath, which may be another adapter's hook
// (whose gradients BaseBackward accumulates).
func (l *ia3Layer) Backward(b backend.Backend, lin *model.Linear, dx, dy, x backend.Buffer) {
	if !l.pass {
		lin.BaseBackward(b, dx, dy)
		return
	}
	if !l.ff {
		b.Mul(l.gz, dy, l.z)
		b.MatMul(l.dl, l.gz, l.ones, backend.MatMul{TransA: true, Accumulate: true}) // [out, 1]
		if dx != nil || lin.Wraps() {
			b.Mul(l.gz, dy, l.lRow)
			lin.BaseBackward(b, dx, l.gz)
		}
		return
	}
	lin.BaseInputGrad(b, l.dxs, dy) // before xs, the base's input, is overwritten
	b.Mul(l.xs, l.dxs, x)
	b.MatMul(l.dl, l.ones, l.xs, backend.MatMul{TransA: true, Accumulate: true}) // [1, in]
	if dx != nil {
		b.Mul(l.dxs, l.dxs, l.l)
		b.Add(dx, dx, l.dxs)
	}
}

// ensureScratch (re)allocates the per-pass buffers for rows input rows.
func (l *ia3Layer) ensureScratch(b backend.Backend, rows int) {
	if l.ones != nil && l.rows == rows {
		return
	}
	l.freeScratch(b)
	l.rows = rows
	l.ones = b.Zeros(rows, 1)
	ones := make([]float32, rows)
	for i := range ones {
		ones[i] = 1
	}
	if err := b.Write(l.ones, 0, ones); err != nil {
		panic("ia3: writing ones: " + err.Error()) // our own F32 buffer: a backend bug
	}
	if l.ff {
		l.xs, l.dxs = b.Zeros(rows, l.lin.In), b.Zeros(rows, l.lin.In)
	} else {
		l.z, l.gz = b.Zeros(rows, l.lin.Out), b.Zeros(rows, l.lin.Out)
	}
}

func (l *ia3Layer) freeScratch(b backend.Backend) {
	freeAll(b, l.ones, l.z, l.gz, l.xs, l.dxs)
	l.ones, l.z, l.gz, l.xs, l.dxs = nil, nil, nil, nil, nil
	l.rows, l.pass = 0, false
}

// Merge scales F32 copies of the targeted weights, which replace them:
// the rows of W and the bias by l, or for feedforward layers the columns
// of W. The originals are kept, so Unload restores them exactly (PEFT
// divides by l instead, which is inexact). Layers already merged are left
// alone.
func (ad *ia3Adapter) Merge() error {
	if ad.unloaded {
		return errors.New("ia3: the adapter was unloaded")
	}
	for _, l := range ad.layers {
		if !l.merged {
			if err := checkMergeOrder(l.lin, l); err != nil {
				return fmt.Errorf("ia3: %w", err)
			}
		}
	}
	b := ad.b
	for _, l := range ad.layers {
		if l.merged {
			continue
		}
		lin := l.lin
		w, err := f32Copy(b, lin.Weight, lin.Out, lin.In)
		if err != nil {
			return fmt.Errorf("ia3: merging into %s: %w", lin.Name, err)
		}
		b.Mul(w, w, l.l) // [out, 1]: a factor per row; [1, in]: per column
		var bias backend.Buffer
		if lin.Bias != nil && !l.ff {
			vals, err := readAll(b, lin.Bias)
			if err == nil {
				bias, err = upload(b, vals, lin.Bias.Shape()...)
			}
			if err != nil {
				b.Free(w)
				return fmt.Errorf("ia3: merging into the bias of %s: %w", lin.Name, err)
			}
			b.Mul(bias, bias, l.lRow)
			l.originalBias, lin.Bias = lin.Bias, bias
		}
		l.original, lin.Weight = lin.Weight, w
		l.merged, l.pass = true, false
	}
	return nil
}

// Unmerge puts the original base weights and biases back. It refuses,
// changing nothing, while an adapter added after this one on the same
// layer is merged.
func (ad *ia3Adapter) Unmerge() error {
	for _, l := range ad.layers {
		if l.merged {
			if err := checkUnmergeOrder(l.lin, l); err != nil {
				return fmt.Errorf("ia3: %w", err)
			}
		}
	}
	for _, l := range ad.layers {
		if !l.merged {
			continue
		}
		ad.b.Free(l.lin.Weight)
		l.lin.Weight, l.original = l.original, nil
		if l.originalBias != nil {
			ad.b.Free(l.lin.Bias)
			l.lin.Bias, l.originalBias = l.originalBias, nil
		}
		l.merged, l.pass = false, false
	}
	return nil
}

// Unload unmerges, uninstalls the hooks and frees every buffer; the model
// computes exactly what it did before the adapter was attached.
func (ad *ia3Adapter) Unload() error {
	if ad.unloaded {
		return errors.New("ia3: the adapter was already unloaded")
	}
	if err := ad.Unmerge(); err != nil {
		return err
	}
	for _, l := range ad.layers {
		l.lin.RemoveHook(l)
	}
	ad.free()
	ad.unloaded = true
	return nil
}

func (ad *ia3Adapter) free() {
	for _, l := range ad.layers {
		l.freeScratch(ad.b)
		freeAll(ad.b, l.lRow, l.l, l.dl)
		l.lRow, l.l, l.dl = nil, nil, nil
	}
	ad.layers = nil
}

// Files encodes the adapter as PEFT saves it: adapter_config.json and
// adapter_model.safetensors (metadata {"format": "pt"}) with one F32
// tensor base_model.model.<module>.ia3_l per layer, [out, 1] or
// (feedforward) [1, in]; the rows of GGUF q/k projections' vectors are
// reordered to Hugging Face's.
func (ad *ia3Adapter) Files() (Files, error) {
	if ad.unloaded {
		return nil, errors.New("ia3: the adapter was unloaded")
	}
	cfg := ad.cfg
	cfg.InferenceMode = true
	cfgJSON, err := EncodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	var tensors []namedValues
	for _, l := range ad.layers {
		lin := l.lin
		vals, err := readAll(ad.b, l.l)
		if err != nil {
			return nil, fmt.Errorf("ia3: %s ia3_l: %w", lin.Name, err)
		}
		if !l.ff && lin.RoPEPermuted > 0 {
			if vals, err = permuteRoPERows(vals, lin.Out, 1, lin.RoPEPermuted, true); err != nil {
				return nil, fmt.Errorf("ia3: %s ia3_l: %w", lin.Name, err)
			}
		}
		tensors = append(tensors, namedValues{vectorName(lin.Name, "ia3_l"), ia3Shape(lin, l.ff), vals})
	}
	return encodeAdapterFiles(cfgJSON, tensors)
}

func init() {
	Register(Method{
		Name: "ia3", PeftType: PeftTypeIA3, Mergeable: true,
		Summary:  "(IA)³: trainable vectors rescaling keys, values and feed-forward activations",
		Defaults: map[string]any{"target_modules": []string{"k_proj", "v_proj", "down_proj"}, "feedforward_modules": []string{"down_proj"}},
		LR:       1e-1,
		Flags:    map[string]string{"model": "base_model_name_or_path", "target": "target_modules", "feedforward": "feedforward_modules"},
		New:      newFromConfig(NewIA3),
		Load:     loadIA3,
	})
}

// loadIA3 reads an (IA)³ adapter directory.
func loadIA3(m *model.Model, src Source) (Adapter, []string, error) {
	cfg, cfgPath, warnings, err := readConfig[IA3Config](src)
	if err != nil {
		return nil, nil, err
	}
	resolved, lins, ff, err := resolveIA3(m, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("peft config %s: %w", cfgPath, err)
	}
	expected := map[string]tensor.Shape{}
	for i, lin := range lins {
		expected[vectorName(lin.Name, "ia3_l")] = ia3Shape(lin, ff[i])
	}
	vals, err := readExactTensors(src, expected, func(name string) string {
		return explainVectorTensor(m, name, "ia3_l")
	})
	if err != nil {
		return nil, nil, err
	}
	wpath := sourcePath(src, WeightsFileName)
	for i, lin := range lins {
		key := vectorName(lin.Name, "ia3_l")
		if !ff[i] && lin.RoPEPermuted > 0 {
			if vals[key], err = permuteRoPERows(vals[key], lin.Out, 1, lin.RoPEPermuted, false); err != nil {
				return nil, nil, fmt.Errorf("safetensors %s: tensor %q: %w", wpath, key, err)
			}
		}
	}
	ad, err := buildIA3(m, resolved, lins, ff, func(lin *model.Linear, _ int) []float32 {
		return vals[vectorName(lin.Name, "ia3_l")]
	})
	if err != nil {
		return nil, nil, err
	}
	return ad, prefixWarnings(cfgPath, warnings), nil
}
