package train

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

// A mixed stack trains several PEFT methods at once (peft.Stack): Stack
// lists them with their own options, or Method names them joined by "+"
// ("lora+prefix-tuning") with Options shared out among them. Each part
// starts from its method's Defaults; the learning rate defaults to the
// smallest of the parts' recommended ones. The parts are created in order,
// each drawing its initialisation from the one seeded generator in turn,
// and the stack is saved as peft.Stack saves it: one subfolder per part
// and a manifest.

// baseConfigKeys are the adapter_config.json keys every PEFT method has;
// Options shared among a stack's parts give them to every part.
var baseConfigKeys = []string{"peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode"}

// StackParts returns the parts of a mixed stack: Stack as it is, or
// Method "a+b" split, each part taking the Options keys its method lists
// among its Flags or Defaults (and the keys of every PEFT config); a key
// that no part knows is an error. Callers that set options per method
// (the CLI's flags) start from it and set Stack.
func (s Spec) StackParts() ([]AdapterSpec, error) {
	if len(s.Stack) > 0 {
		if s.Method != "" || len(s.Options) > 0 {
			return nil, invalidf("give stack, or method and options, not both")
		}
		return s.Stack, nil
	}
	names := strings.Split(s.Method, "+")
	parts := make([]AdapterSpec, len(names))
	known := make([]map[string]bool, len(names))
	for i, name := range names {
		meth, err := peft.LookupMethod(name)
		if err != nil {
			return nil, invalidf("method %q: %w", s.Method, err)
		}
		parts[i].Method = meth.Name
		known[i] = map[string]bool{}
		for _, key := range meth.Flags {
			known[i][key] = true
		}
		for key := range meth.Defaults {
			known[i][key] = true
		}
	}
	for _, key := range slices.Sorted(maps.Keys(s.Options)) {
		taken := false
		for i := range parts {
			if known[i][key] || slices.Contains(baseConfigKeys, key) {
				if parts[i].Options == nil {
					parts[i].Options = map[string]any{}
				}
				parts[i].Options[key], taken = s.Options[key], true
			}
		}
		if !taken {
			return nil, invalidf("option %q applies to none of the methods of %q; give each part its options in stack", key, s.Method)
		}
	}
	return parts, nil
}

// MethodName names what the Spec trains: Method, or a stack's methods
// joined by "+".
func (s Spec) MethodName() string { return s.stackName() }

// partSpec is the single-method Spec of one part of a stack, for the code
// that builds one adapter's settings.
func (s Spec) partSpec(p AdapterSpec) Spec {
	return Spec{Method: p.Method, Options: p.Options, Model: s.Model}
}

// stackDefaults is WithDefaults for a stack: the parts resolved into
// Stack, each with its method's Defaults under its options, and the
// learning rate. A Spec whose parts do not resolve is left for Validate.
func (s Spec) stackDefaults() Spec {
	parts, err := s.StackParts()
	if err != nil {
		return s
	}
	resolved := make([]AdapterSpec, len(parts))
	lr := 0.0
	for i, p := range parts {
		ps := s.partSpec(p)
		meth, err := ps.method()
		if err != nil {
			return s
		}
		resolved[i] = AdapterSpec{Method: meth.Name, Options: ps.options(meth)}
		if lr == 0 || meth.LR < lr {
			lr = meth.LR
		}
	}
	s.Stack, s.Method, s.Options = resolved, "", nil
	if s.LR == 0 {
		s.LR = lr
	}
	return s
}

// checkStack is Validate for a stack (with defaults applied).
func (s Spec) checkStack() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, invalidf(format, a...)) }
	if len(s.Config) > 0 {
		bad("a whole config does not apply to a mixed stack; give each part's options in stack")
	}
	if s.ConvertLoRA {
		bad("convert_lora does not apply to a mixed stack")
	}
	parts, err := s.StackParts()
	if err != nil {
		return append(errs, err)
	}
	if len(parts) < 2 {
		bad("a mixed stack needs two methods or more, not %d", len(parts))
	}
	var seen []string
	for i, p := range parts {
		if strings.Contains(p.Method, "+") {
			bad("stack part %d: method %q: a part is one method", i+1, p.Method)
			continue
		}
		ps := s.partSpec(p)
		meth, err := ps.method()
		if err != nil {
			errs = append(errs, fmt.Errorf("stack part %d: %w", i+1, err))
			continue
		}
		if slices.Contains(seen, meth.Name) {
			bad("stack part %d: method %s is already in the stack; a stack holds each method once", i+1, meth.Name)
		}
		seen = append(seen, meth.Name)
		doc, err := ps.adapterConfig(meth)
		if err != nil {
			errs = append(errs, fmt.Errorf("stack part %d: %w", i+1, err))
			continue
		}
		if meth.Validate != nil {
			if err := meth.Validate(doc); err != nil {
				bad("stack part %d: %s: %w", i+1, meth.Name, err)
			}
		}
	}
	return errs
}

// adapterDoc is one adapter Run creates: its method and its
// adapter_config.json document.
type adapterDoc struct {
	meth peft.Method
	doc  []byte
}

// adapterDocs returns the adapters of a Spec with defaults applied: its
// one adapter, or the parts of its stack in order.
func (s Spec) adapterDocs() ([]adapterDoc, error) {
	if !s.IsStack() {
		meth, err := s.method()
		if err != nil {
			return nil, err
		}
		doc, err := s.adapterConfig(meth)
		if err != nil {
			return nil, err
		}
		return []adapterDoc{{meth, doc}}, nil
	}
	parts, err := s.StackParts()
	if err != nil {
		return nil, err
	}
	out := make([]adapterDoc, len(parts))
	for i, p := range parts {
		ps := s.partSpec(p)
		meth, err := ps.method()
		if err == nil {
			out[i].doc, err = ps.adapterConfig(meth)
		}
		if err != nil {
			return nil, fmt.Errorf("stack part %d: %w", i+1, err)
		}
		out[i].meth = meth
	}
	return out, nil
}

// joinSettings is settings for several adapters at once: the virtual
// tokens of a prompt and a prefix add up, as both take positions before
// the text, and the largest value of any other numeric key (a dropout
// probability) counts.
func joinSettings(docs []adapterDoc) map[string]any {
	out := map[string]any{}
	virtual := 0.0
	for _, d := range docs {
		for k, v := range settings(d.doc) {
			f, isNum := v.(float64)
			switch {
			case k == "num_virtual_tokens" && isNum:
				virtual += f
				continue
			case isNum:
				if old, ok := out[k].(float64); ok && old >= f {
					continue
				}
			case out[k] != nil:
				continue
			}
			out[k] = v
		}
	}
	if virtual > 0 {
		out["num_virtual_tokens"] = virtual
	}
	return out
}

// newAdapter creates the adapters on m in order, drawing from rng in turn,
// and stacks them when there are several. On an error the ones created are
// removed again.
func newAdapter(m *model.Model, docs []adapterDoc, rng *rand.Rand) (peft.Adapter, error) {
	if len(docs) == 1 {
		a, err := docs[0].meth.New(m, docs[0].doc, rng)
		if err != nil {
			return nil, fmt.Errorf("%s adapter: %w", docs[0].meth.Name, err)
		}
		return a, nil
	}
	var parts []peft.Adapter
	fail := func(err error) (peft.Adapter, error) {
		for i := len(parts) - 1; i >= 0; i-- {
			parts[i].Unload()
		}
		return nil, err
	}
	for i, d := range docs {
		a, err := d.meth.New(m, d.doc, rng)
		if err != nil {
			return fail(fmt.Errorf("stack part %d: %s adapter: %w", i+1, d.meth.Name, err))
		}
		parts = append(parts, a)
	}
	s, err := peft.NewStack(parts...)
	if err != nil {
		return fail(err)
	}
	return s, nil
}
