package peft

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"

	"github.com/graft-ml/graft/core/model"
)

// Method describes one PEFT method graft implements: its names on the
// command line and in adapter_config.json, how an adapter of it is created
// and loaded, and the settings that make a run with no other option train
// usefully. Each method registers itself once, from an init function in its
// own file; the CLI, train.Run, the browser and plugins all read this one
// table, so adding a method is a file family plus one Register call.
type Method struct {
	// Name is the --method name ("lora", "prefix-tuning", "houlsby").
	Name string
	// PeftType is adapter_config.json's peft_type ("LORA"), or
	// PeftTypeBottleneck for AdapterHub's bottleneck adapters. Several
	// methods may share one (houlsby and pfeiffer); the first registered
	// loads saved adapters of that type.
	PeftType string
	// Summary is one line for help text.
	Summary string
	// Defaults are the adapter_config.json fields a new adapter of the
	// method starts from, beneath the caller's options.
	Defaults map[string]any
	// LR is the recommended peak learning rate (for a small model such as
	// stories260K and a short run).
	LR float64
	// Flags maps graft train's method flags ("r", "alpha", "dropout",
	// "target", ...) to this method's config keys ("r", "lora_alpha",
	// "lora_dropout", "target_modules"). A flag the method does not list
	// does not apply to it.
	Flags map[string]string
	// Mergeable reports whether Merge folds the adapter into the base.
	Mergeable bool
	// New creates an untrained adapter from a whole adapter_config.json
	// document (Defaults and options already applied), initialised with
	// rng, and attaches it to m.
	New func(m *model.Model, config []byte, rng *rand.Rand) (Adapter, error)
	// Validate checks a config document as far as it can be checked
	// without a model (nil: only New checks).
	Validate func(config []byte) error
	// Load reads a saved adapter of this peft_type onto m; warnings list
	// ignored config keys.
	Load func(m *model.Model, src Source) (a Adapter, warnings []string, err error)
}

// newFromConfig makes a Method.New from a method's constructor: the config
// document is parsed into T first (see ParseConfig).
func newFromConfig[T any](create func(*model.Model, T, *rand.Rand) (Adapter, error)) func(*model.Model, []byte, *rand.Rand) (Adapter, error) {
	return func(m *model.Model, config []byte, rng *rand.Rand) (Adapter, error) {
		cfg, _, err := ParseConfig[T](config)
		if err != nil {
			return nil, fmt.Errorf("peft config: %w", err)
		}
		return create(m, cfg, rng)
	}
}

// validateConfigDoc is a Method.Validate for a config type with a
// Validate method.
func validateConfigDoc[T any, P interface {
	*T
	Validate() error
}](config []byte) error {
	cfg, _, err := ParseConfig[T](config)
	if err != nil {
		return err
	}
	return P(&cfg).Validate()
}

var registry struct {
	sync.Mutex
	methods []Method
}

// Register adds a method to the table. It panics on a duplicate name, as
// init-time registration mistakes are programming errors.
func Register(m Method) {
	registry.Lock()
	defer registry.Unlock()
	for _, old := range registry.methods {
		if old.Name == m.Name {
			panic("peft: method " + m.Name + " registered twice")
		}
	}
	if m.Name == "" || m.PeftType == "" || m.New == nil {
		panic("peft: method " + m.Name + " needs a name, a peft_type and a constructor")
	}
	registry.methods = append(registry.methods, m)
}

// Methods lists the registered methods sorted by name.
func Methods() []Method {
	registry.Lock()
	defer registry.Unlock()
	out := append([]Method(nil), registry.methods...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// MethodNames lists the --method names, sorted.
func MethodNames() []string {
	var names []string
	for _, m := range Methods() {
		names = append(names, m.Name)
	}
	return names
}

// LookupMethod returns the method of a --method name. The error lists the
// supported names.
func LookupMethod(name string) (Method, error) {
	want := strings.ToLower(strings.TrimSpace(name))
	for _, m := range Methods() {
		if m.Name == want {
			return m, nil
		}
	}
	return Method{}, fmt.Errorf("method %q is not supported (supported: %s)", name, strings.Join(MethodNames(), ", "))
}

// methodOfPeftType returns the first registered method of a peft_type.
func methodOfPeftType(peftType string) (Method, bool) {
	registry.Lock()
	defer registry.Unlock()
	for _, m := range registry.methods {
		if m.PeftType == peftType {
			return m, true
		}
	}
	return Method{}, false
}

// PeftTypes lists the peft_type values LoadAdapter accepts.
func PeftTypes() []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range Methods() {
		if m.Load != nil && !seen[m.PeftType] {
			seen[m.PeftType] = true
			out = append(out, m.PeftType)
		}
	}
	sort.Strings(out)
	return out
}

// NewAdapter creates an untrained adapter from an adapter_config.json
// document (any method graft implements, chosen by its peft_type) and
// attaches it to m. It is how callers that speak JSON (the browser, plugins)
// start a training run without knowing each method's Go config type.
func NewAdapter(m *model.Model, config []byte, rng *rand.Rand) (Adapter, error) {
	var head struct {
		PeftType string `json:"peft_type"`
	}
	if err := json.Unmarshal(config, &head); err != nil {
		return nil, fmt.Errorf("peft config: %w", err)
	}
	meth, ok := methodOfPeftType(head.PeftType)
	if !ok {
		return nil, fmt.Errorf("peft config: peft_type %q is not supported (supported: %v)", head.PeftType, PeftTypes())
	}
	return meth.New(m, config, rng)
}
