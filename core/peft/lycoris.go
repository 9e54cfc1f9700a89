package peft

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// LoHa and LoKr (the LyCORIS family, as PEFT's tuners/loha and tuners/lokr
// implement them) add to each targeted linear layer a full-rank-capable
// update built from small factors,
//
//	y = base(x) + x ΔWᵀ,   ΔW = alpha/r · f(factors),
//
// with f a Hadamard product of two low-rank products (LoHa) or a Kronecker
// product (LoKr). What the two share lives here: the hook with PEFT's
// rank and module dropout, merging, the parameter list, saving and loading.
// Each method supplies a deltaMethod that computes x ΔWᵀ, its backward and
// ΔW itself.

// lycoParam is one trainable factor of a LyCORIS layer.
type lycoParam struct {
	suffix      string // PEFT's parameter name: "hada_w1_a", "lokr_w2", ...
	rows, cols  int
	value, grad backend.Buffer
	// outRows says the rows follow the layer's output rows, which GGUF q/k
	// projections keep in Meta's RoPE order: saved files hold them in
	// Hugging Face's order.
	outRows bool
}

// deltaMethod computes one layer's update for a LyCORIS method. Scratch
// may be shared between layers, so each call starts from the factors; one
// pass is in flight at a time.
type deltaMethod interface {
	// forward writes x ΔWᵀ into dst [rows, Out], or adds it when
	// accumulate is set, keeping what backward needs.
	forward(b backend.Backend, dst, x backend.Buffer, rows int, accumulate bool)
	// backward accumulates the factors' gradients for g = ∂L/∂(x ΔWᵀ)
	// [rows, Out] and, when dx is non-nil, adds g ΔW into dx [rows, In].
	// x is the input of the matching forward.
	backward(b backend.Backend, dx, g, x backend.Buffer, rows int)
	// addDelta adds ΔW, rows in the layer's order, into w [Out, In].
	addDelta(b backend.Backend, w backend.Buffer)
	// free releases the layer's own buffers (not shared scratch).
	free(b backend.Backend)
}

// lycoAdapter is one LoHa or LoKr adapter attached to a model.
type lycoAdapter struct {
	m        *model.Model
	b        backend.Backend
	peftType string
	// factorNames are every factor name the method has (PEFT's
	// adapter_layer_names for Linear layers).
	factorNames []string
	// config encodes the resolved config as adapter_config.json.
	config func(inferenceMode bool) ([]byte, error)
	// rankDropout and moduleDropout are the config's; scaleRankDropout
	// rescales kept rows by out/kept (LoHa always, LoKr with
	// rank_dropout_scale).
	rankDropout, moduleDropout float64
	scaleRankDropout           bool
	layers                     []*lycoLayer
	// shared holds scratch and constants shared by layers, freed on Unload.
	shared []interface{ free(backend.Backend) }

	training bool
	rng      *rand.Rand
	unloaded bool
}

// lycoLayer is the hook on one targeted linear layer.
type lycoLayer struct {
	ad     *lycoAdapter
	lin    *model.Linear
	r      int
	alpha  float64
	params []*lycoParam
	delta  deltaMethod
	// original is the base weight while a merged F32 copy replaces it.
	original backend.Buffer

	// The last Forward's draws, for Backward and ReplayForward.
	pass     bool // the update took part in the last Forward
	skipped  bool // module dropout left it out
	masked   bool // rank dropout applied mask
	replay   bool // the next Forward repeats the last one's draws
	hostMask []float32
	mask     backend.Buffer // [Out]: 0 or the kept rows' scale
	rows     int
	z, gz    backend.Buffer // [rows, Out]: the masked path's scratch
}

var (
	_ stackedHook           = (*lycoLayer)(nil)
	_ model.ForwardReplayer = (*lycoLayer)(nil)
)

// scale is the layer's alpha/r.
func (l *lycoLayer) scale() float32 { return float32(l.alpha / float64(l.r)) }

// param returns the layer's factor with the given PEFT name, or nil.
func (l *lycoLayer) param(suffix string) *lycoParam {
	for _, p := range l.params {
		if p.suffix == suffix {
			return p
		}
	}
	return nil
}

// Forward computes dst = base(x) + x ΔWᵀ, with PEFT's dropouts while
// training: module dropout leaves the whole update out of a pass with
// probability module_dropout (torch.rand(1) > p keeps it), rank dropout
// zeroes each output row of ΔW with probability rank_dropout. The base
// alone runs when the adapter is merged into W.
func (l *lycoLayer) Forward(b backend.Backend, lin *model.Linear, dst, x backend.Buffer) {
	lin.Base(b, dst, x)
	l.pass = false
	if l.original != nil {
		return
	}
	if l.replay {
		l.replay = false
	} else {
		l.draw()
	}
	if l.skipped {
		return
	}
	rows := rowsOf(x, lin.In)
	if !l.masked {
		l.delta.forward(b, dst, x, rows, true)
		l.pass = true
		return
	}
	l.ensureMaskScratch(b, rows)
	l.delta.forward(b, l.z, x, rows, false)
	b.Mul(l.z, l.z, l.mask)
	b.Add(dst, dst, l.z)
	l.pass = true
}

// draw decides the dropouts of a Forward from the adapter's generator.
func (l *lycoLayer) draw() {
	ad := l.ad
	training := ad.training && ad.rng != nil
	l.skipped = training && ad.moduleDropout > 0 && !(ad.rng.Float64() > ad.moduleDropout)
	l.masked = training && !l.skipped && ad.rankDropout > 0
	if !l.masked {
		return
	}
	if l.hostMask == nil {
		l.hostMask = make([]float32, l.lin.Out)
	}
	kept := 0
	for i := range l.hostMask {
		l.hostMask[i] = 0
		if ad.rng.Float64() > ad.rankDropout {
			l.hostMask[i] = 1
			kept++
		}
	}
	if ad.scaleRankDropout && kept > 0 {
		// PEFT divides by the mask's mean; with no row kept it would
		// divide by zero, and the update is simply zero instead.
		s := float32(float64(len(l.hostMask)) / float64(kept))
		for i := range l.hostMask {
			l.hostMask[i] *= s
		}
	}
}

// ReplayForward makes the next Forward reuse the last one's dropout draws,
// as activation checkpointing's recomputation needs.
func (l *lycoLayer) ReplayForward() { l.replay = true }

// Backward adds the base's input gradient and, when the update took part
// in the last Forward, its parameter and input gradients.
func (l *lycoLayer) Backward(b backend.Backend, lin *model.Linear, dx, dy, x backend.Buffer) {
	lin.BaseBackward(b, dx, dy)
	if !l.pass {
		return
	}
	rows := rowsOf(x, lin.In)
	g := dy
	if l.masked {
		b.Mul(l.gz, dy, l.mask)
		g = l.gz
	}
	l.delta.backward(b, dx, g, x, rows)
}

// ensureMaskScratch uploads the rank-dropout mask and sizes the masked
// path's buffers for rows rows.
func (l *lycoLayer) ensureMaskScratch(b backend.Backend, rows int) {
	if l.mask == nil {
		l.mask = b.Zeros(l.lin.Out)
	}
	if err := b.Write(l.mask, 0, l.hostMask); err != nil {
		panic("peft: writing the rank dropout mask: " + err.Error()) // our own F32 buffer: a backend bug
	}
	if l.z != nil && l.rows == rows {
		return
	}
	freeAll(b, l.z, l.gz)
	l.rows = rows
	l.z, l.gz = b.Zeros(rows, l.lin.Out), b.Zeros(rows, l.lin.Out)
}

func (l *lycoLayer) free(b backend.Backend) {
	l.delta.free(b)
	freeAll(b, l.mask, l.z, l.gz)
	l.mask, l.z, l.gz = nil, nil, nil
	for _, p := range l.params {
		freeAll(b, p.value, p.grad)
		p.value, p.grad = nil, nil
	}
}

func (ad *lycoAdapter) PeftType() string { return ad.peftType }

// Params returns every factor of every layer, in model order and PEFT's
// order within a layer, with PEFT's tensor names. Factors whose rows
// follow the output rows of GGUF q/k projections are in Meta's order;
// Files converts.
func (ad *lycoAdapter) Params() []model.Param {
	var out []model.Param
	for _, l := range ad.layers {
		for _, p := range l.params {
			out = append(out, model.Param{Name: vectorName(l.lin.Name, p.suffix), Value: p.value, Grad: p.grad})
		}
	}
	return out
}

// SetTraining switches rank and module dropout on or off; rng draws them.
func (ad *lycoAdapter) SetTraining(training bool, rng *rand.Rand) error {
	if training && rng == nil && (ad.rankDropout > 0 || ad.moduleDropout > 0) {
		return fmt.Errorf("%s: SetTraining(true) needs a random source for dropout", ad.name())
	}
	ad.training, ad.rng = training, rng
	return nil
}

// name is the method's name in errors: "loha" or "lokr".
func (ad *lycoAdapter) name() string { return strings.ToLower(ad.peftType) }

// Merge writes W + ΔW into an F32 copy of each targeted weight, which
// replaces it; the original is kept so that Unload restores it exactly.
// Forward then computes the base alone. Layers already merged are left
// alone. With other adapters on a layer, those beneath must be merged
// first and none above may be (see layerstack.go).
func (ad *lycoAdapter) Merge() error {
	if ad.unloaded {
		return fmt.Errorf("%s: the adapter was unloaded", ad.name())
	}
	for _, l := range ad.layers {
		if l.original == nil {
			if err := checkMergeOrder(l.lin, l); err != nil {
				return fmt.Errorf("%s: %w", ad.name(), err)
			}
		}
	}
	b := ad.b
	for _, l := range ad.layers {
		if l.original != nil {
			continue
		}
		lin := l.lin
		cp, err := f32Copy(b, lin.Weight, lin.Out, lin.In)
		if err != nil {
			return fmt.Errorf("%s: merging into %s: %w", ad.name(), lin.Name, err)
		}
		l.delta.addDelta(b, cp)
		l.original, lin.Weight = lin.Weight, cp
		l.pass = false
	}
	return nil
}

// Unmerge puts the original base weights back. It refuses, changing
// nothing, while an adapter added after this one on the same layer is
// merged.
func (ad *lycoAdapter) Unmerge() error {
	for _, l := range ad.layers {
		if l.original != nil {
			if err := checkUnmergeOrder(l.lin, l); err != nil {
				return fmt.Errorf("%s: %w", ad.name(), err)
			}
		}
	}
	for _, l := range ad.layers {
		if l.original == nil {
			continue
		}
		ad.b.Free(l.lin.Weight)
		l.lin.Weight, l.original = l.original, nil
		l.pass = false
	}
	return nil
}

func (l *lycoLayer) adapterKind() string {
	if l.ad.peftType == PeftTypeLoHa {
		return "LoHa"
	}
	return "LoKr"
}

func (l *lycoLayer) mergeState() (anyMerged, allMerged bool) {
	return l.original != nil, l.original != nil
}

// Unload unmerges, uninstalls the hooks and frees every buffer; the model
// computes exactly what it did before the adapter was attached.
func (ad *lycoAdapter) Unload() error {
	if ad.unloaded {
		return fmt.Errorf("%s: the adapter was already unloaded", ad.name())
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

func (ad *lycoAdapter) free() {
	for _, l := range ad.layers {
		l.free(ad.b)
	}
	for _, s := range ad.shared {
		s.free(ad.b)
	}
	ad.layers, ad.shared = nil, nil
}

// Files encodes the adapter as PEFT saves it: adapter_config.json and
// adapter_model.safetensors (metadata {"format": "pt"}) holding, per layer,
// base_model.model.<module>.<factor> in F32, with the rows of GGUF q/k
// projections in Hugging Face's order.
func (ad *lycoAdapter) Files() (Files, error) {
	if ad.unloaded {
		return nil, fmt.Errorf("%s: the adapter was unloaded", ad.name())
	}
	cfgJSON, err := ad.config(true)
	if err != nil {
		return nil, err
	}
	var tensors []namedValues
	for _, l := range ad.layers {
		lin := l.lin
		for _, p := range l.params {
			name := vectorName(lin.Name, p.suffix)
			vals, err := readAll(ad.b, p.value)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", ad.name(), name, err)
			}
			if p.outRows && lin.RoPEPermuted > 0 {
				if vals, err = permuteRoPERows(vals, p.rows, p.cols, lin.RoPEPermuted, true); err != nil {
					return nil, fmt.Errorf("%s: %s: %w", ad.name(), name, err)
				}
			}
			tensors = append(tensors, namedValues{name, tensor.Shape{p.rows, p.cols}, vals})
		}
	}
	return encodeAdapterFiles(cfgJSON, tensors)
}

// lycoPlan is what a method decides for one targeted layer before any
// buffer exists: its rank, alpha and factor shapes.
type lycoPlan struct {
	lin     *model.Linear
	r       int
	alpha   float64
	factors []lycoShape
}

// lycoShape is one factor's name and shape.
type lycoShape struct {
	suffix     string
	rows, cols int
	outRows    bool
}

// buildLyco uploads the factors of every planned layer, lets newDelta
// make each layer's deltaMethod, and installs the hooks; nothing changes
// unless every layer succeeds. values gives a factor's values, rows in
// the layer's order.
func buildLyco(ad *lycoAdapter, plans []lycoPlan, values func(p lycoPlan, f lycoShape) []float32,
	newDelta func(l *lycoLayer) (deltaMethod, error)) (_ Adapter, err error) {
	b := ad.m.Backend
	ad.b = b
	defer func() {
		if err != nil {
			ad.free()
		}
	}()
	for _, p := range plans {
		l := &lycoLayer{ad: ad, lin: p.lin, r: p.r, alpha: p.alpha}
		ad.layers = append(ad.layers, l)
		for _, f := range p.factors {
			lp := &lycoParam{suffix: f.suffix, rows: f.rows, cols: f.cols, outRows: f.outRows}
			l.params = append(l.params, lp)
			if lp.value, err = upload(b, values(p, f), f.rows, f.cols); err != nil {
				return nil, fmt.Errorf("%s: %s: %s: %w", ad.name(), p.lin.Name, f.suffix, err)
			}
			lp.grad = b.Zeros(f.rows, f.cols)
		}
		if l.delta, err = newDelta(l); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", ad.name(), p.lin.Name, err)
		}
	}
	for _, l := range ad.layers {
		l.lin.AddHook(l)
	}
	return ad, nil
}

// kaimingUniform fills dst as torch's nn.init.kaiming_uniform_(a=√5) does
// a [rows, fanIn] tensor: U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
func kaimingUniform(dst []float32, fanIn int, rng *rand.Rand) {
	bound := 1 / math.Sqrt(float64(fanIn))
	for i := range dst {
		dst[i] = float32((2*rng.Float64() - 1) * bound)
	}
}

// loadLyco reads a LoHa or LoKr adapter directory: the factors the plans
// imply must be there with their shapes, nothing else. Rows of outRows
// factors are converted from Hugging Face's order to the layer's.
func loadLyco(ad *lycoAdapter, src Source, plans []lycoPlan, newDelta func(l *lycoLayer) (deltaMethod, error)) (Adapter, error) {
	expected := map[string]tensor.Shape{}
	planned := map[string]bool{}
	for _, p := range plans {
		planned[p.lin.Name] = true
		for _, f := range p.factors {
			expected[vectorName(p.lin.Name, f.suffix)] = tensor.Shape{f.rows, f.cols}
		}
	}
	vals, err := readExactTensors(src, expected, func(name string) string {
		for _, s := range ad.factorNames {
			if module, ok := strings.CutSuffix(name, "."+s); ok && planned[strings.TrimPrefix(module, "base_model.model.")] {
				return "the config implies other factors for this module (check r, decompose_both and decompose_factor)"
			}
		}
		return explainVectorTensor(ad.m, name, ad.factorNames...)
	})
	if err != nil {
		return nil, err
	}
	wpath := sourcePath(src, WeightsFileName)
	for _, p := range plans {
		for _, f := range p.factors {
			key := vectorName(p.lin.Name, f.suffix)
			if f.outRows && p.lin.RoPEPermuted > 0 {
				if vals[key], err = permuteRoPERows(vals[key], f.rows, f.cols, p.lin.RoPEPermuted, false); err != nil {
					return nil, fmt.Errorf("safetensors %s: tensor %q: %w", wpath, key, err)
				}
			}
		}
	}
	return buildLyco(ad, plans, func(p lycoPlan, f lycoShape) []float32 { return vals[vectorName(p.lin.Name, f.suffix)] }, newDelta)
}
