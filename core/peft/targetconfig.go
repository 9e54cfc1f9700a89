package peft

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/graft-ml/graft/core/model"
)

// TargetConfig holds the fields that select the linear layers an adapter
// goes on, shared by the configs of LoRA, VeRA, (IA)³, LoHa and LoKr. A
// config whose PEFT class lacks some of them leaves their keys out
// (`peft:"without=..."` on the embedding), and those fields must stay
// empty.
type TargetConfig struct {
	// TargetModules selects the linear layers that get the adapter. When
	// neither a pattern nor names are given, PEFT's default for the method
	// and architecture applies: q_proj and v_proj for Llama-family models
	// (k_proj, v_proj and down_proj for (IA)³).
	TargetModules Modules `json:"target_modules"`
	// ExcludeModules removes layers from the selection; it wins over
	// TargetModules.
	ExcludeModules Modules `json:"exclude_modules"`
	// LayersToTransform restricts list-form targets to these decoder layer
	// indices (nil or empty: every layer).
	LayersToTransform []int `json:"layers_to_transform" peft:"null,scalar"`
	// LayersPattern names the module list the layer index follows, such as
	// "layers" (nil: any); it needs LayersToTransform.
	LayersPattern []string `json:"layers_pattern" peft:"null,scalar,bare"`
}

// validate applies PEFT's rules: layer restrictions only with list-form
// targets, and layers_pattern only with layers_to_transform.
func (c *TargetConfig) validate() error {
	if err := cmp.Or(c.TargetModules.validate("target_modules"), c.ExcludeModules.validate("exclude_modules")); err != nil {
		return err
	}
	regex := c.TargetModules.Pattern != "" && c.TargetModules.Pattern != AllLinear
	switch {
	case regex && len(c.LayersToTransform) > 0:
		return fmt.Errorf("layers_to_transform cannot be used when target_modules is a regular expression")
	case regex && len(c.LayersPattern) > 0:
		return fmt.Errorf("layers_pattern cannot be used when target_modules is a regular expression")
	case len(c.LayersPattern) > 0 && len(c.LayersToTransform) == 0:
		return fmt.Errorf("layers_pattern needs layers_to_transform, as in PEFT")
	}
	for _, n := range c.LayersToTransform {
		if n < 0 {
			return fmt.Errorf("layers_to_transform has negative index %d", n)
		}
	}
	for _, p := range c.LayersPattern {
		if _, err := layersPatternRegexp(p); err != nil {
			return err
		}
	}
	return nil
}

// selectLinears returns the linear layers of m that c selects, in model
// order, with PEFT's module-matching rules, and c as PEFT saves it: the
// default targets when it names none, "all-linear" expanded into the
// layer names.
func (c TargetConfig) selectLinears(m *model.Model, defaults []string) (TargetConfig, []*model.Linear, error) {
	switch {
	case c.TargetModules.IsZero():
		c.TargetModules = TargetNames(defaults...)
	case c.TargetModules.Pattern == AllLinear:
		var names []string
		for _, l := range m.Linears() { // decoder blocks only, not the head
			short := l.Name[strings.LastIndexByte(l.Name, '.')+1:]
			if !slices.Contains(names, short) {
				names = append(names, short)
			}
		}
		slices.Sort(names)
		c.TargetModules = TargetNames(names...)
	}
	mm, err := newMatcher(&c)
	if err != nil {
		return c, nil, err
	}
	cands := candidates(m)
	if len(cands) == 0 {
		return c, nil, fmt.Errorf("the model has no linear layers")
	}
	var out []*model.Linear
	for _, l := range cands {
		if mm.matches(l.Name) {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		desc, _ := c.TargetModules.MarshalJSON()
		return c, nil, fmt.Errorf("target_modules %s matched none of the model's linear layers (e.g. %q)", desc, cands[0].Name)
	}
	return c, out, nil
}

// validate checks the selector of a config field: only target_modules
// may be "all-linear".
func (m Modules) validate(field string) error {
	switch {
	case m.Pattern != "" && m.Names != nil:
		return fmt.Errorf("%s has both a pattern and names", field)
	case m.Pattern == AllLinear && field != "target_modules":
		return fmt.Errorf("%s cannot be %q", field, AllLinear)
	case slices.Contains(m.Names, ""):
		return fmt.Errorf("%s has an empty name", field)
	case m.Pattern != "" && m.Pattern != AllLinear:
		if _, err := fullMatchRegexp(m.Pattern); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
	}
	return nil
}

// fullMatchRegexp compiles expr to match whole strings, like Python's
// re.fullmatch. Go's RE2 syntax lacks look-around and back-references; such
// patterns are rejected here rather than matched differently.
func fullMatchRegexp(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %w", expr, err)
	}
	return re, nil
}

// PatternConfig holds PEFT's rank_pattern and alpha_pattern (LoRA, LoHa,
// LoKr): they override the config's rank and alpha for the modules whose
// names match a key (a regular expression); the first key in order that
// matches wins, as in PEFT's get_pattern_key.
type PatternConfig struct {
	RankPattern  Patterns[int]     `json:"rank_pattern"`
	AlphaPattern Patterns[float64] `json:"alpha_pattern"`
}

// validate checks that the keys compile and that the ranks and alphas are
// positive.
func (c *PatternConfig) validate() error {
	return cmp.Or(c.RankPattern.validate("rank_pattern", "rank"), c.AlphaPattern.validate("alpha_pattern", "alpha"))
}

func (p Patterns[T]) validate(field, what string) error {
	for _, e := range p {
		if _, err := patternKeyRegexp(e.Key); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		if _, isInt := any(e.Value).(int); isInt && e.Value <= 0 {
			return fmt.Errorf("%s %q: %s %v must be positive", field, e.Key, what, e.Value)
		} else if v := float64(e.Value); !isInt && (!(v > 0) || math.IsInf(v, 0)) {
			return fmt.Errorf("%s %q: %s %v must be positive and finite", field, e.Key, what, e.Value)
		}
	}
	return nil
}

// rankAlpha returns the rank and alpha of module name: r and alpha unless
// a pattern has a key for it.
func (c *PatternConfig) rankAlpha(name string, r int, alpha float64) (int, float64, error) {
	if v, ok, err := c.RankPattern.Lookup(name); err != nil {
		return 0, 0, fmt.Errorf("rank_pattern: %w", err)
	} else if ok {
		r = v
	}
	if v, ok, err := c.AlphaPattern.Lookup(name); err != nil {
		return 0, 0, fmt.Errorf("alpha_pattern: %w", err)
	} else if ok {
		alpha = v
	}
	return r, alpha, nil
}
