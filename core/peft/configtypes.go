package peft

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
)

// Modules is PEFT's target_modules / exclude_modules: either a regular
// expression that must match a whole module name (JSON string; the string
// "all-linear" is special), or a list of names each matching a module name
// exactly or as its last dotted components (JSON list), or nothing (null).
type Modules struct {
	Pattern string
	Names   []string
}

// TargetNames selects modules by name or dotted suffix, like a JSON list.
func TargetNames(names ...string) Modules { return Modules{Names: append([]string{}, names...)} }

// TargetPattern selects modules whose whole name matches expr, like a JSON
// string.
func TargetPattern(expr string) Modules { return Modules{Pattern: expr} }

// TargetAllLinear selects every linear layer of the decoder blocks but not
// the output head, like PEFT's "all-linear".
func TargetAllLinear() Modules { return Modules{Pattern: AllLinear} }

// IsZero reports whether m selects nothing (JSON null).
func (m Modules) IsZero() bool { return m.Pattern == "" && m.Names == nil }

// MarshalJSON writes a string, a sorted list or null.
func (m Modules) MarshalJSON() ([]byte, error) {
	switch {
	case m.Pattern != "":
		return marshalNoHTML(m.Pattern)
	case m.Names != nil:
		names := slices.Clone(m.Names)
		slices.Sort(names)
		return marshalNoHTML(names)
	}
	return []byte("null"), nil
}

// UnmarshalJSON reads a string, a list of strings or null.
func (m *Modules) UnmarshalJSON(data []byte) error {
	*m = Modules{}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
	case string:
		if m.Pattern = v; v == "" {
			return fmt.Errorf("empty string; want a regular expression, a list of names or null")
		}
	case []any:
		m.Names = make([]string, len(v))
		for i, e := range v {
			var ok bool
			if m.Names[i], ok = e.(string); !ok {
				return fmt.Errorf("element %d is %v, want a string", i, e)
			}
		}
	default:
		return fmt.Errorf("%s is not a string, a list of strings or null", compactJSON(data))
	}
	return nil
}

// LoraInit is PEFT's init_lora_weights.
type LoraInit string

const (
	// InitDefault (JSON true) draws A from Kaiming-uniform with a=√5,
	// U(-1/sqrt(in), 1/sqrt(in)), and sets B = 0, as Microsoft's reference
	// implementation and PEFT do.
	InitDefault LoraInit = ""
	// InitGaussian draws A from N(0, (1/r)²), PEFT's "gaussian" (std 1/r),
	// and sets B = 0.
	InitGaussian LoraInit = "gaussian"
	// InitRandom (JSON false) draws both A and B like a fresh nn.Linear,
	// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), so the adapter changes the output
	// from the start; for tests.
	InitRandom LoraInit = "false"
)

// pissaNiter is PEFT's "pissa_niter_[number of iters]".
var pissaNiter = regexp.MustCompile(`^pissa_niter_[0-9]+$`)

// known reports whether PEFT knows the initialisation: AddAdapter performs
// InitDefault, InitGaussian, InitRandom, PiSSA and OLoRA, and Load accepts
// adapters trained from any of them.
func (i LoraInit) known() bool {
	switch i {
	case InitDefault, "true", InitGaussian, InitRandom, "pissa", "olora", "loftq", "eva", "corda", "orthogonal":
		return true
	}
	return pissaNiter.MatchString(string(i))
}

// modifiesBase reports whether the initialisation also changes the base
// weights (PiSSA, OLoRA, LoftQ, CorDA): such an adapter reproduces PEFT's
// outputs on the original base only if it was saved converted to LoRA.
func (i LoraInit) modifiesBase() bool {
	switch i {
	case "pissa", "olora", "loftq", "corda":
		return true
	}
	return pissaNiter.MatchString(string(i))
}

// performedOnLoad reports whether Load, like PEFT's, recomputes the
// initialisation to turn the base weights into its residual.
func (i LoraInit) performedOnLoad() bool {
	return i == InitPiSSA || i == InitOLoRA || pissaNiter.MatchString(string(i))
}

// MarshalJSON writes true, false or the method's name.
func (i LoraInit) MarshalJSON() ([]byte, error) { return marshalInit(i) }

// UnmarshalJSON reads a boolean or a string.
func (i *LoraInit) UnmarshalJSON(data []byte) error {
	return unmarshalInit(data, i, "true, false or a method name")
}

// marshalInit writes one of PEFT's init settings that are a boolean or a
// method's name (LoraInit, LoKrInit): "" and "true" are JSON true, "false"
// is false.
func marshalInit[S ~string](i S) ([]byte, error) {
	switch i {
	case "", "true":
		return []byte("true"), nil
	case "false":
		return []byte("false"), nil
	}
	return marshalNoHTML(string(i))
}

// unmarshalInit reads a boolean (true as "", false as "false") or a
// method's name into *i; want says what else would do.
func unmarshalInit[S ~string](data []byte, i *S, want string) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*i = map[bool]S{true: "", false: "false"}[v]
	case string:
		*i = S(v)
	default:
		return fmt.Errorf("%s is not %s", compactJSON(data), want)
	}
	return nil
}

// Pattern is one entry of rank_pattern or alpha_pattern.
type Pattern[T int | float64] struct {
	Key   string
	Value T
}

// Patterns is an ordered rank_pattern or alpha_pattern. Order matters
// because the first matching key wins; JSON objects are read in file order
// and written with sorted keys, as PEFT does (json.dumps(sort_keys=True)).
type Patterns[T int | float64] []Pattern[T]

// Lookup returns the value of the first key matching module name the way
// PEFT's get_pattern_key does: re.match(rf"(.*\.)?({key})$", name).
func (p Patterns[T]) Lookup(name string) (value T, found bool, err error) {
	for _, e := range p {
		re, err := patternKeyRegexp(e.Key)
		if err != nil {
			return value, false, err
		}
		if re.MatchString(name) {
			return e.Value, true, nil
		}
	}
	return value, false, nil
}

func patternKeyRegexp(key string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(.*\.)?(` + key + `)$`)
	if err != nil {
		return nil, fmt.Errorf("pattern key %q: %w", key, err)
	}
	return re, nil
}

// MarshalJSON writes an object with sorted keys.
func (p Patterns[T]) MarshalJSON() ([]byte, error) {
	b := []byte("{")
	for i, e := range slices.SortedStableFunc(slices.Values(p), func(a, b Pattern[T]) int { return strings.Compare(a.Key, b.Key) }) {
		if i > 0 {
			b = append(b, ',')
		}
		key, _ := marshalNoHTML(e.Key) // a string always encodes
		b = append(append(append(b, key...), ':'), pyNumber(float64(e.Value))...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads an object keeping its key order; null is empty. A key
// repeated in the file keeps its first position and its last value, as
// Python's json module does.
func (p *Patterns[T]) UnmarshalJSON(data []byte) error {
	*p = nil
	var values map[string]float64
	if err := json.Unmarshal(data, &values); err != nil {
		return fmt.Errorf("%s is not an object of numbers", compactJSON(data))
	}
	dec := json.NewDecoder(bytes.NewReader(data)) // for the keys' order
	dec.Token()                                   // the opening brace
	for dec.More() {
		tok, _ := dec.Token()
		var value json.RawMessage
		dec.Decode(&value)
		key, v := tok.(string), values[tok.(string)]
		if _, isInt := any(T(0)).(int); isInt && (v != math.Trunc(v) || math.Abs(v) > 1<<31) {
			return fmt.Errorf("key %q: %s is not an integer", key, value)
		}
		if !slices.ContainsFunc(*p, func(e Pattern[T]) bool { return e.Key == key }) {
			*p = append(*p, Pattern[T]{key, T(v)})
		}
	}
	return nil
}
