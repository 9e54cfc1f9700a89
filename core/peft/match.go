package peft

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/graft-ml/graft/core/model"
)

// defaultTargets is PEFT's target_modules for llama, mistral and qwen2 when
// the config names none (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING).
var defaultTargets = []string{"q_proj", "v_proj"}

// moduleMatcher decides which module names a config selects, following
// PEFT's check_target_module_exists.
type moduleMatcher struct {
	target, exclude     Modules
	targetRe, excludeRe *regexp.Regexp
	layers              []int
	layerRes            []*regexp.Regexp
}

func newMatcher(cfg *TargetConfig) (*moduleMatcher, error) {
	mm := &moduleMatcher{target: cfg.TargetModules, exclude: cfg.ExcludeModules, layers: cfg.LayersToTransform}
	var err error
	if p := mm.target.Pattern; p != "" {
		if p == AllLinear {
			return nil, fmt.Errorf("target_modules %q must be expanded against a model first", AllLinear)
		}
		if mm.targetRe, err = fullMatchRegexp(p); err != nil {
			return nil, fmt.Errorf("target_modules: %w", err)
		}
	}
	if p := mm.exclude.Pattern; p != "" {
		if mm.excludeRe, err = fullMatchRegexp(p); err != nil {
			return nil, fmt.Errorf("exclude_modules: %w", err)
		}
	}
	for _, p := range cfg.LayersPattern {
		re, err := layersPatternRegexp(p)
		if err != nil {
			return nil, err
		}
		mm.layerRes = append(mm.layerRes, re)
	}
	return mm, nil
}

// anyLayer finds the layer index in names like model.layers.3.mlp.up_proj
// when layers_pattern is empty: PEFT's r".*\.[^.]*\.(\d+)\.".
var anyLayer = regexp.MustCompile(`^.*\.[^.]*\.(\d+)\.`)

// layersPatternRegexp is PEFT's rf".*\.{pattern}\.(\d+)\." (re.match, so
// anchored at the start only).
func layersPatternRegexp(p string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^.*\.` + p + `\.(\d+)\.`)
	if err != nil {
		return nil, fmt.Errorf("layers_pattern %q: %w", p, err)
	}
	return re, nil
}

// matches reports whether the module name is selected.
func (mm *moduleMatcher) matches(name string) bool {
	if mm.excludeRe != nil && mm.excludeRe.MatchString(name) {
		return false
	}
	if slices.ContainsFunc(mm.exclude.Names, func(n string) bool { return nameMatches(name, n) }) {
		return false
	}
	if mm.targetRe != nil {
		return mm.targetRe.MatchString(name)
	}
	// A name listed exactly is selected without the layer check: PEFT
	// tests exact membership before it looks at layers_to_transform.
	if slices.Contains(mm.target.Names, name) {
		return true
	}
	if !slices.ContainsFunc(mm.target.Names, func(n string) bool { return strings.HasSuffix(name, "."+n) }) {
		return false
	}
	if len(mm.layers) == 0 {
		return true
	}
	layer, ok := mm.layerIndex(name)
	return ok && slices.Contains(mm.layers, layer)
}

func (mm *moduleMatcher) layerIndex(name string) (int, bool) {
	res := mm.layerRes
	if len(res) == 0 {
		res = []*regexp.Regexp{anyLayer}
	}
	for _, re := range res {
		if m := re.FindStringSubmatch(name); m != nil {
			n, err := strconv.Atoi(m[1])
			return n, err == nil
		}
	}
	return 0, false
}

// nameMatches is the list form: an exact name or a dotted suffix.
func nameMatches(name, entry string) bool {
	return name == entry || strings.HasSuffix(name, "."+entry)
}

// target is one linear layer an adapter applies to, with its rank and
// alpha after rank_pattern and alpha_pattern.
type target struct {
	lin     *model.Linear
	r       int
	alpha   float64
	scaling float64
}

// candidates lists the layers PEFT's LoRA can wrap: every projection of the
// decoder blocks, then the output head.
func candidates(m *model.Model) []*model.Linear {
	out := m.Linears()
	if m.Output != nil {
		out = append(out, m.Output)
	}
	return out
}

// resolveTargets validates cfg, fills in what PEFT fills in when it wraps a
// model (default targets, the expansion of "all-linear" into the layer
// names, as PEFT saves them) and returns the layers the adapter applies to.
func resolveTargets(m *model.Model, cfg LoraConfig) (LoraConfig, []target, error) {
	if err := cfg.Validate(); err != nil {
		return cfg, nil, err
	}
	cfg.PeftType = cmp.Or(cfg.PeftType, PeftTypeLoRA)
	cfg.TaskType = cmp.Or(cfg.TaskType, TaskCausalLM)
	cfg.Bias = cmp.Or(cfg.Bias, BiasNone)
	if cfg.InitLoraWeights == "true" {
		cfg.InitLoraWeights = InitDefault
	}
	sel, lins, err := cfg.selectLinears(m, defaultTargets)
	if err != nil {
		return cfg, nil, fmt.Errorf("lora config: %w", err)
	}
	cfg.TargetConfig = sel
	targets := make([]target, len(lins))
	for i, lin := range lins {
		r, alpha, err := cfg.rankAlpha(lin.Name, cfg.R, cfg.LoraAlpha)
		if err != nil {
			return cfg, nil, fmt.Errorf("lora config: %w", err)
		}
		targets[i] = target{lin: lin, r: r, alpha: alpha, scaling: cfg.Scaling(r, alpha)}
	}
	return cfg, targets, nil
}

// SelectModules returns the names of the linear layers of m that cfg
// targets, in model order, after PEFT's defaults and "all-linear".
func SelectModules(m *model.Model, cfg LoraConfig) ([]string, error) {
	_, targets, err := resolveTargets(m, cfg)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.lin.Name
	}
	return names, nil
}
