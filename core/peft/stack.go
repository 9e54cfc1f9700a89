package peft

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"strings"

	"github.com/graft-ml/graft/core/model"
)

// A Stack is several adapters of different methods on one model at once,
// trained, saved and loaded together: the combinations of He et al.'s
// "Towards a Unified View of Parameter-Efficient Transfer Learning" (MAM
// adapter: prefix tuning with a parallel adapter), LoRA with prefix
// tuning, or LoRA with (IA)³. Each part acts where its method acts; parts
// on the same linear layer nest in the order given, the later wrapping
// the earlier (see layerstack.go), so in "lora+ia3" the (IA)³ vectors scale
// the LoRA term too and in "ia3+lora" they do not.
//
// Saved, a stack is a directory with one subdirectory per part, each a
// plain adapter directory of its method (PEFT loads any one of them alone:
// PeftModel.from_pretrained(model, "dir/lora")), and the manifest
// StackManifestFileName listing them in order:
//
//	{
//	  "graft_stack_version": 1,
//	  "parts": [
//	    {"peft_type": "LORA", "subfolder": "lora"},
//	    {"peft_type": "PREFIX_TUNING", "subfolder": "prefix-tuning"}
//	  ]
//	}
//
// Hugging Face PEFT has no file format for mixed adapters (PeftMixedModel
// cannot save_pretrained), hence graft's own manifest.
type Stack struct {
	parts    []Adapter
	unloaded bool
}

// StackManifestFileName is the manifest of a saved Stack. LoadAdapter
// loads a directory holding it as a Stack (it wins over an
// adapter_config.json beside it, which saving a stack removes).
const StackManifestFileName = "graft_stack.json"

// PeftTypeMixed is a Stack's PeftType. No adapter_config.json carries it.
const PeftTypeMixed = "MIXED"

// stackVersion is the manifest format this graft writes and reads.
const stackVersion = 1

// stackManifest is the manifest's JSON, keys in sorted order.
type stackManifest struct {
	Version int         `json:"graft_stack_version"`
	Parts   []stackPart `json:"parts"`
}

type stackPart struct {
	PeftType  string `json:"peft_type"`
	Subfolder string `json:"subfolder"`
}

// NewStack combines adapters already attached to one model, in the order
// they were attached (innermost first where they share a layer), into one
// Adapter. Their parameter names must differ (two LoRA adapters would
// both be ...lora_A.weight), and a part may not itself be a Stack.
func NewStack(parts ...Adapter) (*Stack, error) {
	if len(parts) == 0 {
		return nil, errors.New("adapter stack: no parts")
	}
	names := map[string]int{}
	for i, p := range parts {
		switch p.(type) {
		case nil:
			return nil, fmt.Errorf("adapter stack: part %d is nil", i+1)
		case *Stack:
			return nil, fmt.Errorf("adapter stack: part %d is itself a stack; list its parts instead", i+1)
		}
		for j, q := range parts[:i] {
			if q == p {
				return nil, fmt.Errorf("adapter stack: parts %d and %d are the same %s adapter", j+1, i+1, p.PeftType())
			}
		}
		for _, prm := range p.Params() {
			if j, dup := names[prm.Name]; dup {
				return nil, fmt.Errorf("adapter stack: parts %d (%s) and %d (%s) both have a parameter %s; a stack holds one adapter per parameter name",
					j+1, parts[j].PeftType(), i+1, p.PeftType(), prm.Name)
			}
			names[prm.Name] = i
		}
	}
	return &Stack{parts: append([]Adapter(nil), parts...)}, nil
}

// Parts returns the stack's adapters in order.
func (s *Stack) Parts() []Adapter { return append([]Adapter(nil), s.parts...) }

// PeftType is PeftTypeMixed.
func (s *Stack) PeftType() string { return PeftTypeMixed }

// Params are every part's parameters, part after part.
func (s *Stack) Params() []model.Param {
	var out []model.Param
	for _, p := range s.parts {
		out = append(out, p.Params()...)
	}
	return out
}

// SetTraining switches every part; they draw from the one rng in turn.
func (s *Stack) SetTraining(training bool, rng *rand.Rand) error {
	for i, p := range s.parts {
		if err := p.SetTraining(training, rng); err != nil {
			return fmt.Errorf("adapter stack: part %d (%s): %w", i+1, p.PeftType(), err)
		}
	}
	return nil
}

// Merge merges every part, in order (innermost first, as PEFT's mixed
// model merges nested layers). Like PEFT, which refuses merge_and_unload
// for prompt learning, it merges nothing and returns an error wrapping
// ErrNotMergeable when any part cannot merge (prefix tuning, bottleneck
// adapters): the stack would otherwise still act in part. Merge such a
// stack's mergeable parts one by one (Parts) to speed up inference.
func (s *Stack) Merge() error {
	if s.unloaded {
		return errors.New("adapter stack: the stack was unloaded")
	}
	for i, p := range s.parts {
		if meth, ok := methodOfPeftType(p.PeftType()); !ok || !meth.Mergeable {
			return fmt.Errorf("adapter stack: part %d (%s): %w", i+1, p.PeftType(), ErrNotMergeable)
		}
	}
	for i, p := range s.parts {
		if err := p.Merge(); err != nil {
			return fmt.Errorf("adapter stack: merging part %d (%s; parts before it stay merged): %w", i+1, p.PeftType(), err)
		}
	}
	return nil
}

// Unload removes the parts in reverse order, outermost first. If one
// fails, the parts after it are gone and it and those before it stay.
func (s *Stack) Unload() error {
	if s.unloaded {
		return errors.New("adapter stack: the stack was already unloaded")
	}
	for i := len(s.parts) - 1; i >= 0; i-- {
		if err := s.parts[i].Unload(); err != nil {
			return fmt.Errorf("adapter stack: unloading part %d (%s): %w", i+1, s.parts[i].PeftType(), err)
		}
		s.parts = s.parts[:i]
	}
	s.unloaded = true
	return nil
}

// Files encodes the stack as its directory holds it: the manifest and
// each part's files under "<subfolder>/". A part's subfolder is its
// peft_type in lower case with hyphens ("prefix-tuning"), numbered from
// the second of a type on ("lora-2").
func (s *Stack) Files() (Files, error) {
	if s.unloaded {
		return nil, errors.New("adapter stack: the stack was unloaded")
	}
	out := Files{}
	man := stackManifest{Version: stackVersion}
	used := map[string]int{}
	for i, p := range s.parts {
		files, err := p.Files()
		if err != nil {
			return nil, fmt.Errorf("adapter stack: part %d (%s): %w", i+1, p.PeftType(), err)
		}
		sub := strings.ReplaceAll(strings.ToLower(p.PeftType()), "_", "-")
		if used[sub]++; used[sub] > 1 {
			sub = fmt.Sprintf("%s-%d", sub, used[sub])
		}
		for name, data := range files {
			out[sub+"/"+name] = data
		}
		man.Parts = append(man.Parts, stackPart{PeftType: p.PeftType(), Subfolder: sub})
	}
	data, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return nil, err
	}
	out[StackManifestFileName] = append(data, '\n')
	return out, nil
}

// readStackManifest reads and checks src's manifest; ok is false when
// src has none.
func readStackManifest(src Source) (man stackManifest, ok bool, err error) {
	p := sourcePath(src, StackManifestFileName)
	data, err := src.ReadFile(StackManifestFileName)
	if errors.Is(err, fs.ErrNotExist) {
		return man, false, nil
	}
	if err != nil {
		return man, false, fmt.Errorf("adapter stack %s: %w", p, err)
	}
	if len(data) > maxConfigSize {
		return man, false, fmt.Errorf("adapter stack %s: larger than the %d-byte limit", p, maxConfigSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&man); err != nil {
		return man, false, fmt.Errorf("adapter stack %s: %w", p, err)
	}
	if dec.More() {
		return man, false, fmt.Errorf("adapter stack %s: data after the JSON object", p)
	}
	switch {
	case man.Version != stackVersion:
		return man, false, fmt.Errorf("adapter stack %s: graft_stack_version %d is not supported (this graft reads %d)", p, man.Version, stackVersion)
	case len(man.Parts) == 0:
		return man, false, fmt.Errorf("adapter stack %s: no parts", p)
	}
	seen := map[string]bool{}
	for i, part := range man.Parts {
		sub := part.Subfolder
		if sub == "" || sub == "." || sub == ".." || strings.ContainsAny(sub, `/\:`) {
			return man, false, fmt.Errorf("adapter stack %s: part %d: subfolder %q is not a plain directory name", p, i+1, sub)
		}
		if seen[sub] {
			return man, false, fmt.Errorf("adapter stack %s: part %d: subfolder %q is listed twice", p, i+1, sub)
		}
		seen[sub] = true
		if meth, ok := methodOfPeftType(part.PeftType); !ok || meth.Load == nil {
			return man, false, fmt.Errorf("adapter stack %s: part %d: peft_type %q is not supported (supported: %v)", p, i+1, part.PeftType, PeftTypes())
		}
	}
	return man, true, nil
}

// loadStack loads every part of a stack directory in order; on an error
// the parts loaded so far are removed again.
func loadStack(m *model.Model, src Source, man stackManifest) (_ *Stack, warnings []string, err error) {
	manPath := sourcePath(src, StackManifestFileName)
	var parts []Adapter
	defer func() {
		if err != nil {
			for i := len(parts) - 1; i >= 0; i-- {
				parts[i].Unload()
			}
		}
	}()
	for i, part := range man.Parts {
		sub := subSource{src, part.Subfolder}
		peftType, err := adapterPeftType(sub)
		if err != nil {
			return nil, nil, fmt.Errorf("adapter stack %s: part %d: %w", manPath, i+1, err)
		}
		if peftType != part.PeftType {
			return nil, nil, fmt.Errorf("adapter stack %s: part %d is listed as %s, but %s holds a %s adapter",
				manPath, i+1, part.PeftType, sourcePath(sub, ConfigFileName), peftType)
		}
		meth, _ := methodOfPeftType(peftType)
		a, w, err := meth.Load(m, sub)
		if err != nil {
			return nil, nil, fmt.Errorf("adapter stack %s: part %d: %w", manPath, i+1, err)
		}
		parts = append(parts, a)
		warnings = append(warnings, w...)
	}
	s, err := NewStack(parts...)
	if err != nil {
		return nil, nil, fmt.Errorf("adapter stack %s: %w", manPath, err)
	}
	return s, warnings, nil
}

// adapterPeftType reads the peft_type of src's adapter_config.json
// (AdapterHub's bottleneck configs have none: they keep their settings
// under "config").
func adapterPeftType(src Source) (string, error) {
	data, cfgPath, err := readConfigFile(src)
	if err != nil {
		return "", err
	}
	var head struct {
		PeftType string          `json:"peft_type"`
		Config   json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return "", fmt.Errorf("peft config %s: %w", cfgPath, err)
	}
	if head.PeftType == "" && len(head.Config) > 0 {
		head.PeftType = PeftTypeBottleneck
	}
	return head.PeftType, nil
}

// subSource reads the files of one part of a stack.
type subSource struct {
	parent Source
	dir    string
}

func (s subSource) Name() string { return sourcePath(s.parent, s.dir) }

func (s subSource) ReadFile(name string) ([]byte, error) {
	return s.parent.ReadFile(path.Join(s.dir, name))
}
