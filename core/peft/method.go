package peft

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/graft-ml/graft/core/model"
)

// Adapter is one adapter of any PEFT method attached to a model: what the
// trainer, the CLI, the browser and plugins work with, whatever the method.
type Adapter interface {
	// PeftType is the peft_type of adapter_config.json ("LORA", "VERA",
	// "IA3", "PROMPT_TUNING", "PREFIX_TUNING", ...).
	PeftType() string
	// Params are the trainable parameters, with PEFT's tensor names.
	Params() []model.Param
	// SetTraining switches training-only behaviour (dropout, drawn from
	// rng) on or off.
	SetTraining(training bool, rng *rand.Rand) error
	// Files encodes the adapter in its reference format (for PEFT methods
	// adapter_config.json and adapter_model.safetensors); Save writes them
	// into a directory.
	Files() (Files, error)
	// Merge folds the adapter into the base weights, after which it no
	// longer acts separately; methods that cannot merge return
	// ErrNotMergeable.
	Merge() error
	// Unload removes the adapter from the model (unmerging it first when
	// it is merged) and frees its buffers.
	Unload() error
}

// ErrNotMergeable is returned by Merge for methods whose effect is not a
// change of base weights (prompt and prefix tuning, bottleneck adapters).
var ErrNotMergeable = errors.New("this PEFT method cannot be merged into the base weights")

// LoadAdapter reads adapter_config.json from src and loads the adapter with
// the method its peft_type names, or, where src holds a stack manifest
// (StackManifestFileName), every part of the Stack in order. Warnings list
// ignored config keys.
func LoadAdapter(m *model.Model, src Source) (Adapter, []string, error) {
	man, isStack, err := readStackManifest(src)
	if err != nil {
		return nil, nil, err
	}
	if isStack {
		return loadStack(m, src, man)
	}
	peftType, err := adapterPeftType(src)
	if err != nil {
		return nil, nil, err
	}
	meth, ok := methodOfPeftType(peftType)
	if !ok || meth.Load == nil {
		return nil, nil, fmt.Errorf("peft config %s: peft_type %q is not supported (supported: %v)", sourcePath(src, ConfigFileName), peftType, PeftTypes())
	}
	return meth.Load(m, src)
}

// loraAdapter presents one named LoRA adapter of a Manager as an Adapter.
type loraAdapter struct {
	mg   *Manager
	name string
}

// AsAdapter returns the named LoRA adapter as a method-agnostic Adapter.
func (mg *Manager) AsAdapter(name string) (Adapter, error) {
	if _, err := mg.adapter(name); err != nil {
		return nil, err
	}
	return &loraAdapter{mg, name}, nil
}

func (a *loraAdapter) PeftType() string { return PeftTypeLoRA }

func (a *loraAdapter) Params() []model.Param {
	p, _ := a.mg.Params(a.name)
	return p
}

func (a *loraAdapter) SetTraining(on bool, rng *rand.Rand) error { return a.mg.SetTraining(on, rng) }
func (a *loraAdapter) Files() (Files, error)                     { return a.mg.Files(a.name) }
func (a *loraAdapter) Merge() error                              { return a.mg.Merge(a.name) }

// Unload unmerges the adapter when it is merged, as Adapter.Unload
// promises, and deletes it. The manager unmerges all its adapters at
// once, so the others that were merged are merged again afterwards.
func (a *loraAdapter) Unload() error {
	merged := a.mg.Merged()
	if !slices.Contains(merged, a.name) {
		return a.mg.DeleteAdapter(a.name)
	}
	if err := a.mg.Unmerge(); err != nil {
		return err
	}
	if err := a.mg.DeleteAdapter(a.name); err != nil {
		return err
	}
	if others := slices.DeleteFunc(merged, func(n string) bool { return n == a.name }); len(others) > 0 {
		return a.mg.Merge(others...)
	}
	return nil
}

// FilesConverted encodes the adapter as the equivalent plain LoRA for the
// original base weights (see Manager.FilesConverted).
func (a *loraAdapter) FilesConverted() (Files, error) { return a.mg.FilesConverted(a.name) }

// SavedConverted returns a whose Files (and so Save) give the equivalent
// plain adapter for the original base weights instead of a itself, as
// PEFT's save_pretrained does with
// path_initial_model_for_weight_conversion: a LoRA adapter initialised
// with PiSSA or OLoRA, whose base weights are residuals, is saved as a
// rank-2r LoRA that needs no residual base. It is an error for adapters
// that cannot be converted; whether this one can (its init) is checked
// when Files runs.
func SavedConverted(a Adapter) (Adapter, error) {
	c, ok := a.(interface{ FilesConverted() (Files, error) })
	if !ok {
		return nil, fmt.Errorf("a %s adapter cannot be saved converted; only LoRA initialised with PiSSA or OLoRA can", a.PeftType())
	}
	return convertedAdapter{a, c.FilesConverted}, nil
}

type convertedAdapter struct {
	Adapter
	files func() (Files, error)
}

func (c convertedAdapter) Files() (Files, error) { return c.files() }

func init() {
	Register(Method{
		Name: "lora", PeftType: PeftTypeLoRA, Mergeable: true,
		Summary:  "LoRA: a trainable low-rank update B·A beside each target projection (also rsLoRA, DoRA, PiSSA, OLoRA)",
		Defaults: map[string]any{"r": 8, "lora_alpha": 16, "target_modules": []string{"q_proj", "v_proj"}},
		LR:       1e-2,
		Flags: map[string]string{"model": "base_model_name_or_path", "r": "r", "alpha": "lora_alpha", "dropout": "lora_dropout",
			"target": "target_modules", "rslora": "use_rslora", "init": "init_lora_weights", "dora": "use_dora"},
		New: func(m *model.Model, config []byte, rng *rand.Rand) (Adapter, error) {
			cfg, _, err := ParseConfig[LoraConfig](config)
			if err != nil {
				return nil, fmt.Errorf("peft config: %w", err)
			}
			mg := managerOf(m)
			name := freeName(mg)
			if err := mg.AddAdapter(name, cfg, rng); err != nil {
				return nil, err
			}
			return &loraAdapter{mg, name}, nil
		},
		Validate: validateConfigDoc[LoraConfig],
		Load: func(m *model.Model, src Source) (Adapter, []string, error) {
			mg := managerOf(m)
			name := freeName(mg)
			warnings, err := mg.LoadFrom(src, name)
			if err != nil {
				return nil, nil, err
			}
			// Like PEFT, the first adapter is active already; later ones join.
			if active := mg.Active(); !slices.Contains(active, name) {
				if err := mg.SetActive(append(active, name)...); err != nil {
					return nil, nil, err
				}
			}
			return &loraAdapter{mg, name}, warnings, nil
		},
	})
}

// freeName returns an adapter name the manager does not use yet.
func freeName(mg *Manager) string {
	name := fmt.Sprintf("adapter%d", len(mg.order))
	for i := len(mg.order) + 1; slices.Contains(mg.order, name); i++ {
		name = fmt.Sprintf("adapter%d", i)
	}
	return name
}

// managerOf returns the LoRA manager already hooked into m, so that several
// LoRA adapters loaded through LoadAdapter share one (and combine), or a new
// one.
func managerOf(m *model.Model) *Manager {
	for _, l := range append(m.Linears(), m.Output) {
		for _, x := range l.Hooks() {
			if h, ok := x.(*loraLayer); ok {
				return h.mgr
			}
		}
	}
	return AttachLoRA(m)
}
