package peft

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/tensor"
)

// VeRA (Kopiczko et al., 2023) shares one pair of frozen random matrices,
// A [r, maxIn] and B [maxOut, r], between every targeted layer and trains
// two vectors per layer:
//
//	y = base(x) + λb ⊙ (B[:out] (λd ⊙ (A[:, :in] dropout(x))))
//
// where maxIn and maxOut are the largest input and output sizes among the
// targeted layers and each layer uses the leading rows and columns it
// needs, as PEFT's VeraModel does.
//
// PEFT draws A and B from a torch.Generator seeded with
// projection_prng_key; graft cannot reproduce torch's generator bit for
// bit, so it draws them from its own generator seeded with the same key and
// always saves them (save_projection true), under PEFT's keys
// base_model.vera_A and base_model.vera_B. Loading always uses the saved
// projections, so an adapter moves between graft and PEFT unchanged.

// Saved tensor names of the shared projections (PEFT's checkpoint keys,
// without the adapter name).
const (
	veraAKey = "base_model.vera_A"
	veraBKey = "base_model.vera_B"
)

// veraAdapter is one VeRA adapter attached to a model.
type veraAdapter struct {
	m     *model.Model
	b     backend.Backend
	cfg   VeraConfig // resolved: defaults filled in, as saved
	maxIn int
	// projA [r, maxIn] and projB [maxOut, r] are the projections as saved,
	// B's rows in Hugging Face's order.
	projA, projB []float32
	maxOut       int
	// Slices of the projections on the backend, shared by the layers that
	// need the same one: A[:, :in] by in; B[:out] by out and the number of
	// heads whose rows the layer keeps in Meta's RoPE order.
	slicesA map[int]backend.Buffer
	slicesB map[[2]int]backend.Buffer
	layers  []*veraLayer

	training bool
	rng      *rand.Rand
	unloaded bool
}

// veraLayer is the hook on one targeted linear layer.
type veraLayer struct {
	ad  *veraAdapter
	lin *model.Linear
	// a [r, in] and b [out, r] are shared slices of the projections, b's
	// rows in the layer's own order.
	a, b backend.Buffer
	// lambdaB [out] (in the layer's row order) and lambdaD [r] with their
	// gradients; the views see them as columns for merging and the
	// gradients as rows for column sums.
	lambdaB, lambdaD, dLambdaB, dLambdaD backend.Buffer
	lbCol, ldCol, dlbRow, dldRow         backend.Buffer

	// original is the base weight while a merged F32 copy replaces it.
	original backend.Buffer

	// What Forward keeps for Backward.
	pass    bool // the adapter took part in the last Forward
	dropped bool // and applied dropout
	rows    int
	ones    backend.Buffer // [rows, 1] of ones, for column sums
	ax      backend.Buffer // [rows, r]: A x'
	h       backend.Buffer // [rows, r]: λd ⊙ ax; scratch in Backward
	gh      backend.Buffer // [rows, r]: gradient with respect to h
	z       backend.Buffer // [rows, out]: B h
	gz      backend.Buffer // [rows, out]: scratch
	mask    backend.Buffer // [rows, in]: 0 or 1/(1-p)
	xd      backend.Buffer // [rows, in]: x ⊙ mask
	dxd     backend.Buffer // [rows, in]
	hostMsk []float32
}

var _ model.LinearHook = (*veraLayer)(nil)

// NewVeRA attaches a new VeRA adapter to the layers of m that cfg targets.
// The projections are drawn from a generator seeded with
// cfg.ProjectionPRNGKey (Kaiming-uniform, as PEFT's _kaiming_init: bound
// sqrt(6/fan_in)); rng is used only when cfg.InitWeights is false, to draw
// vera_lambda_d from N(0, 1) as PEFT does. No targeted layer may already
// have a hook (another adapter).
func NewVeRA(m *model.Model, cfg VeraConfig, rng *rand.Rand) (Adapter, error) {
	resolved, lins, maxIn, maxOut, err := resolveVeRA(m, cfg)
	if err != nil {
		return nil, err
	}
	switch {
	case resolved.InitWeights && resolved.DInitial == 0:
		return nil, errors.New("vera: d_initial 0 with init_weights gives vera_lambda_b and vera_lambda_d zero gradients: the adapter could never train")
	case !resolved.InitWeights && rng == nil:
		return nil, errors.New("vera: init_weights false needs a random source for vera_lambda_d")
	}
	projA, projB := veraProjections(resolved.ProjectionPRNGKey, resolved.R, maxIn, maxOut)
	return buildVeRA(m, resolved, lins, maxIn, maxOut, projA, projB, func(lin *model.Linear) (lb, ld []float32) {
		lb, ld = make([]float32, lin.Out), make([]float32, resolved.R)
		for i := range ld {
			if resolved.InitWeights {
				ld[i] = float32(resolved.DInitial)
			} else {
				ld[i] = float32(rng.NormFloat64())
			}
		}
		if !resolved.InitWeights {
			for i := range lb {
				lb[i] = 1
			}
		}
		return lb, ld
	})
}

// resolveVeRA validates cfg, fills in PEFT's defaults and returns the
// targeted layers with the projections' sizes.
func resolveVeRA(m *model.Model, cfg VeraConfig) (VeraConfig, []*model.Linear, int, int, error) {
	if err := cfg.Validate(); err != nil {
		return cfg, nil, 0, 0, err
	}
	cfg.PeftType = PeftTypeVeRA
	cfg.TaskType = cmp.Or(cfg.TaskType, TaskCausalLM)
	cfg.Bias = cmp.Or(cfg.Bias, BiasNone)
	// PEFT's VeRA mapping equals LoRA's for Llama.
	targets, lins, err := cfg.selectLinears(m, defaultTargets)
	if err != nil {
		return cfg, nil, 0, 0, fmt.Errorf("vera: %w", err)
	}
	cfg.TargetConfig = targets
	var maxIn, maxOut int
	for _, l := range lins {
		maxIn, maxOut = max(maxIn, l.In), max(maxOut, l.Out)
	}
	return cfg, lins, maxIn, maxOut, nil
}

// veraProjections draws A [r, maxIn] then B [maxOut, r] uniformly from
// ±sqrt(6/fan_in) (Kaiming-uniform with gain sqrt(2), fan_in the number of
// columns), from a generator seeded with key.
func veraProjections(key int64, r, maxIn, maxOut int) (a, b []float32) {
	rng := rand.New(rand.NewPCG(uint64(key), 0x7665726150524e47)) // "veraPRNG"
	draw := func(n, fanIn int) []float32 {
		bound := math.Sqrt(6 / float64(fanIn))
		out := make([]float32, n)
		for i := range out {
			out[i] = float32((2*rng.Float64() - 1) * bound)
		}
		return out
	}
	a = draw(r*maxIn, maxIn)
	b = draw(maxOut*r, r)
	return a, b
}

// buildVeRA uploads everything and installs the hooks; nothing changes
// unless every layer succeeds. values gives each layer's λb (in the
// layer's row order) and λd.
func buildVeRA(m *model.Model, cfg VeraConfig, lins []*model.Linear, maxIn, maxOut int, projA, projB []float32,
	values func(*model.Linear) (lb, ld []float32)) (_ Adapter, err error) {
	b := m.Backend
	ad := &veraAdapter{m: m, b: b, cfg: cfg, maxIn: maxIn, maxOut: maxOut, projA: projA, projB: projB,
		slicesA: map[int]backend.Buffer{}, slicesB: map[[2]int]backend.Buffer{}}
	defer func() {
		if err != nil {
			ad.free()
		}
	}()
	r := cfg.R
	for _, lin := range lins {
		l := &veraLayer{ad: ad, lin: lin}
		ad.layers = append(ad.layers, l)
		if l.a, err = ad.sliceA(lin.In); err != nil {
			return nil, fmt.Errorf("vera: %s: vera_A: %w", lin.Name, err)
		}
		if l.b, err = ad.sliceB(lin.Out, lin.RoPEPermuted); err != nil {
			return nil, fmt.Errorf("vera: %s: vera_B: %w", lin.Name, err)
		}
		lb, ld := values(lin)
		if l.lambdaB, err = upload(b, lb, lin.Out); err != nil {
			return nil, fmt.Errorf("vera: %s: vera_lambda_b: %w", lin.Name, err)
		}
		if l.lambdaD, err = upload(b, ld, r); err != nil {
			return nil, fmt.Errorf("vera: %s: vera_lambda_d: %w", lin.Name, err)
		}
		l.dLambdaB, l.dLambdaD = b.Zeros(lin.Out), b.Zeros(r)
		l.lbCol, l.ldCol = b.View(l.lambdaB, 0, lin.Out, 1), b.View(l.lambdaD, 0, r, 1)
		l.dlbRow, l.dldRow = b.View(l.dLambdaB, 0, 1, lin.Out), b.View(l.dLambdaD, 0, 1, r)
	}
	for _, l := range ad.layers {
		l.lin.AddHook(l)
	}
	return ad, nil
}

// sliceA returns A[:, :in] on the backend, uploading it once.
func (ad *veraAdapter) sliceA(in int) (backend.Buffer, error) {
	if buf, ok := ad.slicesA[in]; ok {
		return buf, nil
	}
	r := ad.cfg.R
	vals := make([]float32, r*in)
	for i := range r {
		copy(vals[i*in:(i+1)*in], ad.projA[i*ad.maxIn:i*ad.maxIn+in])
	}
	buf, err := upload(ad.b, vals, r, in)
	if err != nil {
		return nil, err
	}
	ad.slicesA[in] = buf
	return buf, nil
}

// sliceB returns B[:out] on the backend with its rows in the order of a
// layer that keeps ropeHeads heads in Meta's order, uploading it once.
func (ad *veraAdapter) sliceB(out, ropeHeads int) (backend.Buffer, error) {
	key := [2]int{out, ropeHeads}
	if buf, ok := ad.slicesB[key]; ok {
		return buf, nil
	}
	r := ad.cfg.R
	vals := ad.projB[:out*r]
	if ropeHeads > 0 {
		var err error
		if vals, err = permuteRoPERows(vals, out, r, ropeHeads, false); err != nil {
			return nil, err
		}
	}
	buf, err := upload(ad.b, vals, out, r)
	if err != nil {
		return nil, err
	}
	ad.slicesB[key] = buf
	return buf, nil
}

func (ad *veraAdapter) PeftType() string { return PeftTypeVeRA }

// Params returns vera_lambda_b and vera_lambda_d of each layer, in model
// order, with PEFT's tensor names. λb of projections stored in Meta's RoPE
// order (GGUF q/k) is in that order; Files converts.
func (ad *veraAdapter) Params() []model.Param {
	var out []model.Param
	for _, l := range ad.layers {
		out = append(out,
			model.Param{Name: vectorName(l.lin.Name, "vera_lambda_b"), Value: l.lambdaB, Grad: l.dLambdaB},
			model.Param{Name: vectorName(l.lin.Name, "vera_lambda_d"), Value: l.lambdaD, Grad: l.dLambdaD},
		)
	}
	return out
}

// vectorName is PEFT's saved key of a parameter registered directly on a
// tuner layer (an nn.Parameter, so without ".weight").
func vectorName(module, which string) string { return "base_model.model." + module + "." + which }

// SetTraining switches dropout on or off; rng draws the masks.
func (ad *veraAdapter) SetTraining(training bool, rng *rand.Rand) error {
	if training && rng == nil {
		return errors.New("vera: SetTraining(true) needs a random source for dropout")
	}
	ad.training, ad.rng = training, rng
	return nil
}

// Forward computes dst = base(x) + λb ⊙ (B (λd ⊙ (A x'))) with x' = x after
// dropout, or the base alone when the adapter is merged into W.
func (l *veraLayer) Forward(b backend.Backend, lin *model.Linear, dst, x backend.Buffer) {
	lin.Base(b, dst, x)
	l.pass = false
	if l.original != nil {
		return
	}
	ad := l.ad
	rows := rowsOf(x, lin.In)
	l.dropped = ad.training && ad.cfg.VeraDropout > 0 && ad.rng != nil
	l.ensureScratch(b, rows)
	src := x
	if l.dropped {
		p := ad.cfg.VeraDropout
		keep := float32(1 / (1 - p)) // inverted dropout, as torch.nn.Dropout
		for i := range l.hostMsk {
			if ad.rng.Float64() < p {
				l.hostMsk[i] = 0
			} else {
				l.hostMsk[i] = keep
			}
		}
		if err := b.Write(l.mask, 0, l.hostMsk); err != nil {
			panic("vera: writing the dropout mask: " + err.Error()) // our own F32 buffer: a backend bug
		}
		b.Mul(l.xd, x, l.mask)
		src = l.xd
	}
	b.MatMul(l.ax, src, l.a, backend.MatMul{TransB: true})
	b.Mul(l.h, l.ax, l.lambdaD)
	b.MatMul(l.z, l.h, l.b, backend.MatMul{TransB: true})
	b.Mul(l.gz, l.z, l.lambdaB)
	b.Add(dst, dst, l.gz)
	l.pass = true
}

// Backward adds the base's input gradient and, when the adapter took part
// in the Forward, with g = λb ⊙ dy and gh = g B:
// dλb += Σ_rows dy ⊙ z, dλd += Σ_rows gh ⊙ ax, dx += ((λd ⊙ gh) A) ⊙ mask.
func (l *veraLayer) Backward(b backend.Backend, lin *model.Linear, dx, dy, x backend.Buffer) {
	lin.BaseBackward(b, dx, dy)
	if !l.pass {
		return
	}
	// gz and h are scratch here; ax and z stay as Forward left them, so
	// Backward may run again on the same pass.
	b.Mul(l.gz, dy, l.z)
	b.MatMul(l.dlbRow, l.ones, l.gz, backend.MatMul{TransA: true, Accumulate: true})
	b.Mul(l.gz, dy, l.lambdaB)
	b.MatMul(l.gh, l.gz, l.b, backend.MatMul{})
	b.Mul(l.h, l.gh, l.ax)
	b.MatMul(l.dldRow, l.ones, l.h, backend.MatMul{TransA: true, Accumulate: true})
	if dx == nil {
		return
	}
	b.Mul(l.h, l.gh, l.lambdaD)
	if !l.dropped {
		b.MatMul(dx, l.h, l.a, backend.MatMul{Accumulate: true})
		return
	}
	b.MatMul(l.dxd, l.h, l.a, backend.MatMul{})
	b.Mul(l.dxd, l.dxd, l.mask)
	b.Add(dx, dx, l.dxd)
}

// ensureScratch (re)allocates the per-pass buffers for rows input rows.
func (l *veraLayer) ensureScratch(b backend.Backend, rows int) {
	if l.ones != nil && l.rows == rows && (!l.dropped || l.mask != nil) {
		return
	}
	l.freeScratch(b)
	r, in, out := l.ad.cfg.R, l.lin.In, l.lin.Out
	l.rows = rows
	l.ones = b.Zeros(rows, 1)
	ones := make([]float32, rows)
	for i := range ones {
		ones[i] = 1
	}
	if err := b.Write(l.ones, 0, ones); err != nil {
		panic("vera: writing ones: " + err.Error()) // our own F32 buffer: a backend bug
	}
	l.ax, l.h, l.gh = b.Zeros(rows, r), b.Zeros(rows, r), b.Zeros(rows, r)
	l.z, l.gz = b.Zeros(rows, out), b.Zeros(rows, out)
	if l.dropped {
		l.mask, l.xd, l.dxd = b.Zeros(rows, in), b.Zeros(rows, in), b.Zeros(rows, in)
		l.hostMsk = make([]float32, rows*in)
	}
}

func (l *veraLayer) freeScratch(b backend.Backend) {
	freeAll(b, l.ones, l.ax, l.h, l.gh, l.z, l.gz, l.mask, l.xd, l.dxd)
	l.ones, l.ax, l.h, l.gh, l.z, l.gz, l.mask, l.xd, l.dxd, l.hostMsk = nil, nil, nil, nil, nil, nil, nil, nil, nil, nil
	l.rows, l.pass = 0, false
}

// freeAll frees the non-nil buffers.
func freeAll(b backend.Backend, bufs ...backend.Buffer) {
	for _, buf := range bufs {
		if buf != nil {
			b.Free(buf)
		}
	}
}

// Merge writes W + λb ⊙ B[:out] · diag(λd) · A[:, :in] into an F32 copy
// of each targeted weight, which replaces it; the original is kept so that
// Unload restores it exactly. Forward then computes the base alone.
// Layers already merged are left alone.
func (ad *veraAdapter) Merge() error {
	if ad.unloaded {
		return errors.New("vera: the adapter was unloaded")
	}
	for _, l := range ad.layers {
		if l.original == nil {
			if err := checkMergeOrder(l.lin, l); err != nil {
				return fmt.Errorf("vera: %w", err)
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
			return fmt.Errorf("vera: merging into %s: %w", lin.Name, err)
		}
		da := b.Zeros(ad.cfg.R, lin.In)
		db := b.Zeros(lin.Out, ad.cfg.R)
		b.Mul(da, l.a, l.ldCol) // diag(λd) A: row i times λd[i]
		b.Mul(db, l.b, l.lbCol) // λb ⊙ B: row o times λb[o]
		b.MatMul(cp, db, da, backend.MatMul{Accumulate: true})
		freeAll(b, da, db)
		l.original, lin.Weight = lin.Weight, cp
		l.pass = false
	}
	return nil
}

// Unmerge puts the original base weights back. It refuses, changing
// nothing, while an adapter added after this one on the same layer is
// merged.
func (ad *veraAdapter) Unmerge() error {
	for _, l := range ad.layers {
		if l.original != nil {
			if err := checkUnmergeOrder(l.lin, l); err != nil {
				return fmt.Errorf("vera: %w", err)
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

func (l *veraLayer) adapterKind() string { return "VeRA" }

func (l *veraLayer) mergeState() (anyMerged, allMerged bool) {
	return l.original != nil, l.original != nil
}

// Unload unmerges, uninstalls the hooks and frees every buffer; the model
// computes exactly what it did before the adapter was attached.
func (ad *veraAdapter) Unload() error {
	if ad.unloaded {
		return errors.New("vera: the adapter was already unloaded")
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

// free releases every buffer the adapter owns (not the base weights).
func (ad *veraAdapter) free() {
	b := ad.b
	for _, l := range ad.layers {
		l.freeScratch(b)
		freeAll(b, l.lbCol, l.ldCol, l.dlbRow, l.dldRow, l.lambdaB, l.lambdaD, l.dLambdaB, l.dLambdaD)
		l.lbCol, l.ldCol, l.dlbRow, l.dldRow, l.lambdaB, l.lambdaD, l.dLambdaB, l.dLambdaD = nil, nil, nil, nil, nil, nil, nil, nil
	}
	for k, buf := range ad.slicesA {
		b.Free(buf)
		delete(ad.slicesA, k)
	}
	for k, buf := range ad.slicesB {
		b.Free(buf)
		delete(ad.slicesB, k)
	}
	ad.layers = nil
}

// Files encodes the adapter as PEFT saves it: adapter_config.json and
// adapter_model.safetensors (metadata {"format": "pt"}) holding
// base_model.vera_A [r, maxIn], base_model.vera_B [maxOut, r] and, per
// layer, base_model.model.<module>.vera_lambda_b [out] and .vera_lambda_d
// [r], all F32; λb of GGUF q/k projections is reordered to Hugging Face's
// rows.
func (ad *veraAdapter) Files() (Files, error) {
	if ad.unloaded {
		return nil, errors.New("vera: the adapter was unloaded")
	}
	cfg := ad.cfg
	cfg.InferenceMode = true
	cfgJSON, err := EncodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	r := cfg.R
	tensors := []namedValues{
		{veraAKey, tensor.Shape{r, ad.maxIn}, ad.projA},
		{veraBKey, tensor.Shape{ad.maxOut, r}, ad.projB},
	}
	for _, l := range ad.layers {
		lin := l.lin
		lb, err := readAll(ad.b, l.lambdaB)
		if err != nil {
			return nil, fmt.Errorf("vera: %s vera_lambda_b: %w", lin.Name, err)
		}
		if lin.RoPEPermuted > 0 {
			if lb, err = permuteRoPERows(lb, lin.Out, 1, lin.RoPEPermuted, true); err != nil {
				return nil, fmt.Errorf("vera: %s vera_lambda_b: %w", lin.Name, err)
			}
		}
		ld, err := readAll(ad.b, l.lambdaD)
		if err != nil {
			return nil, fmt.Errorf("vera: %s vera_lambda_d: %w", lin.Name, err)
		}
		tensors = append(tensors,
			namedValues{vectorName(lin.Name, "vera_lambda_b"), tensor.Shape{lin.Out}, lb},
			namedValues{vectorName(lin.Name, "vera_lambda_d"), tensor.Shape{r}, ld})
	}
	return encodeAdapterFiles(cfgJSON, tensors)
}

// namedValues is one F32 tensor to save.
type namedValues struct {
	name  string
	shape tensor.Shape
	vals  []float32
}

// encodeAdapterFiles builds a PEFT adapter's files, refusing non-finite
// values (a diverged run should not overwrite a good adapter silently).
func encodeAdapterFiles(cfgJSON []byte, tensors []namedValues) (Files, error) {
	ts := make([]*tensor.Tensor, 0, len(tensors))
	for _, nv := range tensors {
		if i := firstNonFinite(nv.vals); i >= 0 {
			return nil, fmt.Errorf("refusing to save tensor %q: element %d is %g", nv.name, i, nv.vals[i])
		}
		t, err := tensor.FromFloat32(nv.name, nv.shape, nv.vals)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	var weights bytes.Buffer
	if err := safetensors.Write(&weights, ts, map[string]string{"format": "pt"}); err != nil {
		return nil, err
	}
	return Files{ConfigFileName: cfgJSON, WeightsFileName: weights.Bytes()}, nil
}

// explainVectorTensor says why a tensor name a VeRA or IA³ config does not
// imply is refused.
func explainVectorTensor(m *model.Model, name string, suffixes ...string) string {
	for _, s := range suffixes {
		rest, ok := strings.CutSuffix(name, "."+s)
		if !ok {
			continue
		}
		module, ok := strings.CutPrefix(rest, "base_model.model.")
		if !ok {
			break
		}
		if _, ok := m.Linear(module); !ok && !(m.Output != nil && m.Output.Name == module) {
			return fmt.Sprintf("module %s does not exist in the model", module)
		}
		return fmt.Sprintf("module %s is not selected by the config's target_modules", module)
	}
	return fmt.Sprintf("not a tensor this adapter type has (want base_model.model.<module>.%s)", suffixes[0])
}

func init() {
	Register(Method{
		Name: "vera", PeftType: PeftTypeVeRA, Mergeable: true,
		Summary:  "VeRA: frozen shared random projections scaled by trainable vectors",
		Defaults: map[string]any{"r": 256, "target_modules": []string{"q_proj", "v_proj"}, "d_initial": 0.1},
		LR:       1e-1,
		Flags: map[string]string{"model": "base_model_name_or_path", "r": "r", "dropout": "vera_dropout", "target": "target_modules",
			"d-initial": "d_initial", "projection-seed": "projection_prng_key"},
		New:  newFromConfig(NewVeRA),
		Load: loadVeRA,
	})
}

// loadVeRA reads a VeRA adapter directory saved with its projections.
func loadVeRA(m *model.Model, src Source) (Adapter, []string, error) {
	cfg, cfgPath, warnings, err := readConfig[VeraConfig](src)
	if err != nil {
		return nil, nil, err
	}
	resolved, lins, maxIn, maxOut, err := resolveVeRA(m, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("peft config %s: %w", cfgPath, err)
	}
	r := resolved.R
	expected := map[string]tensor.Shape{veraAKey: {r, maxIn}, veraBKey: {maxOut, r}}
	for _, lin := range lins {
		expected[vectorName(lin.Name, "vera_lambda_b")] = tensor.Shape{lin.Out}
		expected[vectorName(lin.Name, "vera_lambda_d")] = tensor.Shape{r}
	}
	vals, err := readExactTensors(src, expected, func(name string) string {
		return explainVectorTensor(m, name, "vera_lambda_b", "vera_lambda_d")
	})
	if err != nil {
		return nil, nil, err
	}
	wpath := sourcePath(src, WeightsFileName)
	lambdaB := map[*model.Linear][]float32{}
	for _, lin := range lins {
		key := vectorName(lin.Name, "vera_lambda_b")
		lb := vals[key]
		if lin.RoPEPermuted > 0 {
			if lb, err = permuteRoPERows(lb, lin.Out, 1, lin.RoPEPermuted, false); err != nil {
				return nil, nil, fmt.Errorf("safetensors %s: tensor %q: %w", wpath, key, err)
			}
		}
		lambdaB[lin] = lb
	}
	ad, err := buildVeRA(m, resolved, lins, maxIn, maxOut, vals[veraAKey], vals[veraBKey], func(lin *model.Linear) ([]float32, []float32) {
		return lambdaB[lin], vals[vectorName(lin.Name, "vera_lambda_d")]
	})
	if err != nil {
		return nil, nil, err
	}
	return ad, prefixWarnings(cfgPath, warnings), nil
}
