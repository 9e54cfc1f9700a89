package peft

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/model"
)

// Manager owns the LoRA adapters of one model: it installs a hook on every
// targeted model.Linear, keeps several named adapters side by side, chooses
// which are active, and merges them into the base weights.
//
// Like PEFT, the first adapter added becomes active; later ones are added
// inactive until SetActive names them. Several active adapters on the same
// layer add their terms. A Manager is not safe for concurrent use, and the
// model must not be used by another goroutine while it changes.
type Manager struct {
	m        *model.Model
	b        backend.Backend
	adapters map[string]*adapter
	order    []string // adapter names in the order they were added
	active   []string
	layers   []*loraLayer // hooked layers, in model order
	disabled bool
	// rowAdapters, when set, gives each batch row its own adapter (see
	// SetRowAdapters).
	rowAdapters []string
	training    bool
	rng         *rand.Rand
	zeros       []float32 // a run of zeros for clearing buffers
}

// adapter is one named adapter: its resolved config and its weights on the
// layers it targets, in model order.
type adapter struct {
	name    string
	cfg     LoraConfig
	modules []*loraWeights
}

// AttachLoRA returns a LoRA Manager for m with no adapters yet. Hooks are installed
// by AddAdapter and Load.
func AttachLoRA(m *model.Model) *Manager {
	return &Manager{m: m, b: m.Backend, adapters: map[string]*adapter{}}
}

// Model returns the model the manager is attached to.
func (mg *Manager) Model() *model.Model { return mg.m }

// Adapters returns the adapter names in the order they were added.
func (mg *Manager) Adapters() []string { return slices.Clone(mg.order) }

// Config returns an adapter's config as resolved against the model (PEFT's
// default targets filled in, "all-linear" expanded).
func (mg *Manager) Config(name string) (LoraConfig, error) {
	a, err := mg.adapter(name)
	if err != nil {
		return LoraConfig{}, err
	}
	return a.cfg, nil
}

// Modules returns the names of the layers an adapter applies to.
func (mg *Manager) Modules(name string) ([]string, error) {
	a, err := mg.adapter(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(a.modules))
	for i, w := range a.modules {
		out[i] = w.layer.lin.Name
	}
	return out, nil
}

func (mg *Manager) adapter(name string) (*adapter, error) {
	a, ok := mg.adapters[name]
	if !ok {
		return nil, fmt.Errorf("lora: no adapter %q (have %q)", name, mg.order)
	}
	return a, nil
}

func checkAdapterName(name string) error {
	if name == "" || strings.ContainsAny(name, "./\\ \t\n") {
		return fmt.Errorf("lora: adapter name %q must be non-empty without dots, slashes or spaces", name)
	}
	return nil
}

// AddAdapter creates adapter name from cfg on the layers it targets,
// initialising A and B as cfg.InitLoraWeights says with draws from rng:
// PEFT's default (Kaiming-uniform A, zero B), "gaussian", false (both
// random), or "pissa", "pissa_niter_N" and "olora", which take the
// principal part s·B·A out of each base weight (see PiSSA). With
// cfg.UseDoRA the adapter also gets DoRA's magnitude vector, initialised to
// the row norms of W + s·B·A.
func (mg *Manager) AddAdapter(name string, cfg LoraConfig, rng *rand.Rand) error {
	if rng == nil {
		return fmt.Errorf("lora: adapter %q: nil random source", name)
	}
	init := cfg.InitLoraWeights
	switch {
	case init == InitDefault, init == "true", init == InitGaussian, init == InitRandom:
		return mg.addAdapter(name, cfg, func(t target) (layerInit, error) {
			a, b := initialValues(init, t.r, t.lin.In, t.lin.Out, rng)
			return layerInit{a: a, b: b}, nil
		})
	case init == InitPiSSA, init == InitOLoRA, pissaNiter.MatchString(string(init)):
		if merged := mg.Merged(); len(merged) > 0 {
			return fmt.Errorf("lora: adapter %q: init_lora_weights %q changes the base weights; unmerge %q first", name, string(init), merged)
		}
		return mg.addAdapter(name, cfg, func(t target) (layerInit, error) {
			return principalInit(mg.b, t, init, rng)
		})
	}
	return fmt.Errorf("lora: adapter %q: init_lora_weights %q is not supported (supported: true, false, \"gaussian\", \"pissa\", \"pissa_niter_N\", \"olora\")", name, string(init))
}

// layerInit is what an adapter starts from on one layer.
type layerInit struct {
	a, b []float32 // A [r, In] and B [Out, r], B rows in the model's order
	// mag is DoRA's magnitude [Out]; nil computes it from the weights.
	mag []float32
	// residual, when set, replaces the base weight [Out, In] (PiSSA,
	// OLoRA), which a0 and b0 (the initial A and B; a and b when nil)
	// were taken out of.
	residual []float32
	a0, b0   []float32
}

// addAdapter resolves cfg against the model and installs weights whose
// host values come from values. Nothing changes unless every layer
// succeeds.
func (mg *Manager) addAdapter(name string, cfg LoraConfig, values func(target) (layerInit, error)) (err error) {
	if err := checkAdapterName(name); err != nil {
		return err
	}
	if _, dup := mg.adapters[name]; dup {
		return fmt.Errorf("lora: adapter %q already exists", name)
	}
	resolved, targets, err := resolveTargets(mg.m, cfg)
	if err != nil {
		return fmt.Errorf("lora: adapter %q: %w", name, err)
	}
	for _, t := range targets {
		if err := mg.checkStackable(t.lin, resolved); err != nil {
			return fmt.Errorf("lora: adapter %q: %w", name, err)
		}
	}
	a := &adapter{name: name, cfg: resolved}
	residuals := make([]backend.Buffer, len(targets))
	defer func() {
		if err != nil {
			for _, w := range a.modules {
				w.free(mg.b)
			}
			for _, r := range residuals {
				if r != nil {
					mg.b.Free(r)
				}
			}
		}
	}()
	for i, t := range targets {
		init, err := values(t)
		if err != nil {
			return err
		}
		w := &loraWeights{adapter: name, r: t.r, alpha: t.alpha, scaling: t.scaling, dropout: resolved.LoraDropout}
		a.modules = append(a.modules, w)
		if w.A, err = upload(mg.b, init.a, t.r, t.lin.In); err != nil {
			return fmt.Errorf("lora: adapter %q: %s: %w", name, t.lin.Name, err)
		}
		if w.B, err = upload(mg.b, init.b, t.lin.Out, t.r); err != nil {
			return fmt.Errorf("lora: adapter %q: %s: %w", name, t.lin.Name, err)
		}
		w.dA = mg.b.Zeros(t.r, t.lin.In)
		w.dB = mg.b.Zeros(t.lin.Out, t.r)
		weight := t.lin.Weight
		if init.residual != nil {
			if residuals[i], err = upload(mg.b, init.residual, t.lin.Out, t.lin.In); err != nil {
				return fmt.Errorf("lora: adapter %q: %s: residual weight: %w", name, t.lin.Name, err)
			}
			weight = residuals[i]
			w.init0A, w.init0B = slices.Clone(init.a), slices.Clone(init.b)
			if init.a0 != nil {
				w.init0A, w.init0B = init.a0, init.b0
			}
		}
		if resolved.UseDoRA {
			if err := w.newDoRA(mg.b, t.lin, weight, init.mag); err != nil {
				return fmt.Errorf("lora: adapter %q: %s: DoRA magnitude: %w", name, t.lin.Name, err)
			}
		}
	}
	// Every buffer exists: install.
	for i, t := range targets {
		h := mg.layerOf(t.lin)
		if h == nil {
			h = &loraLayer{mgr: mg, lin: t.lin, weights: map[string]*loraWeights{}}
			mg.layers = append(mg.layers, h)
			t.lin.AddHook(h)
		}
		w := a.modules[i]
		w.layer = h
		h.weights[name] = w
		if residuals[i] != nil {
			if h.pristine == nil {
				h.pristine = t.lin.Weight
			} else {
				mg.b.Free(t.lin.Weight) // the previous residual, ours
			}
			t.lin.Weight = residuals[i]
			h.mutators = append(h.mutators, w)
		}
	}
	mg.sortLayers()
	mg.adapters[name] = a
	mg.order = append(mg.order, name)
	if len(mg.order) == 1 {
		mg.active = []string{name}
	}
	return nil
}

// layerOf returns the manager's hook on lin, or nil.
func (mg *Manager) layerOf(lin *model.Linear) *loraLayer {
	for _, x := range lin.Hooks() {
		if h, ok := x.(*loraLayer); ok && h.mgr == mg {
			return h
		}
	}
	return nil
}

// checkStackable says whether an adapter of cfg may join lin, where other
// adapters' hooks may sit (see layerstack.go). DoRA rescales the output of
// the plain projection, so nothing may lie beneath its layer; PiSSA and
// OLoRA replace the base weight, which the other adapters of the layer
// use too; and no term may be added beneath a merged adapter.
func (mg *Manager) checkStackable(lin *model.Linear, cfg LoraConfig) error {
	hooks := lin.Hooks()
	h := mg.layerOf(lin)
	pos := len(hooks)
	var other model.LinearHook // an adapter of the layer not this manager's
	for i, x := range hooks {
		if x == model.LinearHook(h) {
			pos = i
		} else if other == nil {
			other = x
		}
	}
	switch {
	case other == nil:
		return nil
	case cfg.UseDoRA && pos > 0:
		return fmt.Errorf("%s: DoRA needs the plain projection beneath it, but the layer's %s adapter was added before it (add the DoRA adapter first)", lin.Name, hookKind(hooks[0]))
	case cfg.InitLoraWeights.performedOnLoad():
		return fmt.Errorf("%s: init_lora_weights %q changes the base weight, which the layer's %s adapter uses too", lin.Name, string(cfg.InitLoraWeights), hookKind(other))
	case h != nil:
		return checkOuterUnmerged(lin, h, "add to")
	}
	return nil
}

func (h *loraLayer) adapterKind() string { return "LoRA" }

func (h *loraLayer) mergeState() (anyMerged, allMerged bool) {
	return len(h.merged) > 0, len(h.merged) == len(h.weights)
}

// sortLayers keeps the hooked layers in model order.
func (mg *Manager) sortLayers() {
	pos := map[*model.Linear]int{}
	for i, l := range candidates(mg.m) {
		pos[l] = i
	}
	slices.SortFunc(mg.layers, func(a, b *loraLayer) int { return pos[a.lin] - pos[b.lin] })
}

// SetActive makes exactly the named adapters active; their terms are added
// in the order given.
func (mg *Manager) SetActive(names ...string) error {
	if len(names) == 0 {
		return errors.New("lora: SetActive needs at least one adapter; use WithDisabled to run the base model")
	}
	for i, n := range names {
		if _, err := mg.adapter(n); err != nil {
			return err
		}
		if slices.Contains(names[:i], n) {
			return fmt.Errorf("lora: adapter %q named twice", n)
		}
	}
	mg.active = slices.Clone(names)
	mg.clearPasses()
	return nil
}

// Active returns the active adapters.
func (mg *Manager) Active() []string { return slices.Clone(mg.active) }

// WithDisabled runs fn with every adapter switched off, like PEFT's
// disable_adapter context: the model computes its base outputs. Adapters
// merged into the weights are unmerged first and merged again afterwards.
// The previous state is restored even when fn fails or panics.
func (mg *Manager) WithDisabled(fn func() error) (err error) {
	if mg.disabled {
		return fn()
	}
	var remerge []string
	for _, h := range mg.layers {
		for _, w := range h.merged {
			if !slices.Contains(remerge, w.adapter) {
				remerge = append(remerge, w.adapter)
			}
		}
	}
	if len(remerge) > 0 {
		if err := mg.Unmerge(); err != nil {
			return err
		}
	}
	mg.disabled = true
	mg.clearPasses()
	defer func() {
		mg.disabled = false
		mg.clearPasses()
		if len(remerge) > 0 {
			if merr := mg.Merge(remerge...); merr != nil && err == nil {
				err = merr
			}
		}
	}()
	return fn()
}

// DeleteAdapter removes an adapter and frees its buffers. An adapter
// merged into the base weights must be unmerged first.
func (mg *Manager) DeleteAdapter(name string) error {
	a, err := mg.adapter(name)
	if err != nil {
		return err
	}
	for _, w := range a.modules {
		if w.merged {
			return fmt.Errorf("lora: adapter %q is merged into %s; Unmerge first", name, w.layer.lin.Name)
		}
		if w.init0A != nil && len(w.layer.merged) > 0 {
			return fmt.Errorf("lora: adapter %q changed the base weight of %s, which has merged adapters; Unmerge first", name, w.layer.lin.Name)
		}
	}
	for _, w := range a.modules {
		if w.init0A != nil {
			if err := mg.dropMutator(w); err != nil {
				return fmt.Errorf("lora: deleting adapter %q: %s: %w", name, w.layer.lin.Name, err)
			}
		}
	}
	if slices.Contains(mg.rowAdapters, name) {
		mg.rowAdapters = nil
	}
	for _, w := range a.modules {
		h := w.layer
		delete(h.weights, name)
		w.free(mg.b)
		if len(h.weights) == 0 {
			mg.removeLayer(h)
		}
	}
	delete(mg.adapters, name)
	mg.order = slices.DeleteFunc(mg.order, func(n string) bool { return n == name })
	mg.active = slices.DeleteFunc(mg.active, func(n string) bool { return n == name })
	mg.clearPasses()
	return nil
}

// removeLayer uninstalls the hook of a layer that serves no adapter.
func (mg *Manager) removeLayer(h *loraLayer) {
	h.freeBase(mg.b)
	h.lin.RemoveHook(h)
	mg.layers = slices.DeleteFunc(mg.layers, func(x *loraLayer) bool { return x == h })
}

// clearPasses forgets what the last Forward recorded, so that a Backward
// after a change of adapters cannot use stale state.
func (mg *Manager) clearPasses() {
	for _, h := range mg.layers {
		h.pass = h.pass[:0]
	}
}

// SetTraining switches dropout on (training) or off. rng supplies the
// dropout masks, so the caller controls reproducibility; it must be non-nil
// when training.
func (mg *Manager) SetTraining(training bool, rng *rand.Rand) error {
	if training && rng == nil {
		return errors.New("lora: SetTraining(true) needs a random source for dropout")
	}
	mg.training, mg.rng = training, rng
	return nil
}

// Training reports whether dropout is on.
func (mg *Manager) Training() bool { return mg.training }

// Params returns an adapter's trainable tensors with their gradients, named
// as PEFT names them in adapter_model.safetensors: lora_A, lora_B and, for
// DoRA, lora_magnitude_vector of each layer, in model order. Values are in the model's own layout: for
// GGUF q/k projections B's rows follow Meta's RoPE order (Save converts).
func (mg *Manager) Params(name string) ([]model.Param, error) {
	a, err := mg.adapter(name)
	if err != nil {
		return nil, err
	}
	var out []model.Param
	for _, w := range a.modules {
		out = append(out,
			model.Param{Name: tensorName(w.layer.lin.Name, "lora_A"), Value: w.A, Grad: w.dA},
			model.Param{Name: tensorName(w.layer.lin.Name, "lora_B"), Value: w.B, Grad: w.dB},
		)
		if w.dora != nil {
			out = append(out, model.Param{Name: magnitudeName(w.layer.lin.Name), Value: w.dora.m, Grad: w.dora.dm})
		}
	}
	return out, nil
}

// ZeroGrad clears the gradients of the named adapters (all when none).
func (mg *Manager) ZeroGrad(names ...string) error {
	if len(names) == 0 {
		names = mg.order
	}
	for _, n := range names {
		a, err := mg.adapter(n)
		if err != nil {
			return err
		}
		for _, w := range a.modules {
			// Written rather than scaled by 0, which would keep NaNs.
			if err := mg.clear(w.dA); err != nil {
				return err
			}
			if err := mg.clear(w.dB); err != nil {
				return err
			}
			if w.dora != nil {
				if err := mg.clear(w.dora.dm); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (mg *Manager) clear(buf backend.Buffer) error {
	n := int(buf.Shape().Numel())
	if len(mg.zeros) < n {
		mg.zeros = make([]float32, n)
	}
	if err := mg.b.Write(buf, 0, mg.zeros[:n]); err != nil {
		return fmt.Errorf("lora: clearing a gradient: %w", err)
	}
	return nil
}

// tensorName is PEFT's saved key for a LoRA matrix of a module:
// base_model.model.<module>.lora_A.weight (the adapter name is dropped).
func tensorName(module, which string) string {
	return "base_model.model." + module + "." + which + ".weight"
}

// Unload removes every adapter without merging and uninstalls the hooks,
// leaving the base model as it was (merged adapters are unmerged first, and
// weights PiSSA or OLoRA replaced by residuals are restored) and the
// manager empty.
func (mg *Manager) Unload() error {
	if err := mg.Unmerge(); err != nil {
		return err
	}
	mg.release()
	return nil
}

// release frees every adapter and uninstalls the hooks, giving layers whose
// weight PiSSA or OLoRA replaced their own weight back.
func (mg *Manager) release() {
	for _, h := range mg.layers {
		if h.pristine != nil {
			mg.b.Free(h.lin.Weight)
			h.lin.Weight, h.pristine, h.mutators = h.pristine, nil, nil
		}
	}
	for _, a := range mg.adapters {
		for _, w := range a.modules {
			w.free(mg.b)
		}
	}
	for _, h := range slices.Clone(mg.layers) {
		mg.removeLayer(h)
	}
	mg.adapters, mg.order, mg.active, mg.rowAdapters = map[string]*adapter{}, nil, nil, nil
}
