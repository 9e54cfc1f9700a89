package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/core/formats/hfconfig"
	"github.com/graft-ml/graft/core/formats/safetensors"
	"github.com/graft-ml/graft/core/tokenizer"
)

// Info describes a model file without loading its weights.
type Info struct {
	Path         string         `json:"path"`
	Format       string         `json:"format"` // "gguf" or "hf"
	Version      uint32         `json:"version,omitempty"`
	Architecture string         `json:"architecture"`
	Config       Config         `json:"config"`
	Params       int64          `json:"params"`
	DTypes       map[string]int `json:"dtypes"`
	Tensors      []TensorInfo   `json:"tensors"`
	Tokenizer    *TokenizerInfo `json:"tokenizer,omitempty"`
	Metadata     map[string]any `json:"metadata,omitempty"`
}

// TensorInfo is one row of Info's tensor table.
type TensorInfo struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
	DType string `json:"dtype"`
	Bytes int64  `json:"bytes"`
}

// TokenizerInfo summarizes a tokenizer.
type TokenizerInfo struct {
	Kind  string `json:"kind"`
	Vocab int    `json:"vocab"`
	BOS   int32  `json:"bos"`
	EOS   int32  `json:"eos"`
	// AddsBOS: encoding a prompt starts with BOS (tokenizer.AddsBOS).
	AddsBOS bool `json:"adds_bos"`
	// EndOfGeneration lists the ids generation stops at.
	EndOfGeneration []int32 `json:"end_of_generation,omitempty"`
}

func summarize(t tokenizer.Tokenizer) *TokenizerInfo {
	if t == nil {
		return nil
	}
	return &TokenizerInfo{Kind: t.Kind(), Vocab: t.VocabSize(), BOS: t.BOS(), EOS: t.EOS(),
		AddsBOS: tokenizer.AddsBOS(t), EndOfGeneration: tokenizer.EndOfGeneration(t)}
}

// Inspect reads the header of a GGUF file or Hugging Face directory.
func Inspect(path string) (*Info, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	if st.IsDir() {
		return inspectHF(path)
	}
	return inspectGGUF(path)
}

func inspectGGUF(path string) (*Info, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info := &Info{Path: path, Format: "gguf", Version: f.Version, Architecture: f.Architecture(), DTypes: map[string]int{}, Metadata: map[string]any{}}
	if info.Config, err = ggufConfig(f); err != nil {
		return nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	info.Params = info.Config.NumParams()
	for _, kv := range f.KVs {
		if s, ok := kv.Value.([]string); ok && len(s) > 16 {
			info.Metadata[kv.Key] = fmt.Sprintf("[%d strings]", len(s))
			continue
		}
		if s, ok := kv.Value.([]float32); ok && len(s) > 16 {
			info.Metadata[kv.Key] = fmt.Sprintf("[%d floats]", len(s))
			continue
		}
		if s, ok := kv.Value.([]int32); ok && len(s) > 16 {
			info.Metadata[kv.Key] = fmt.Sprintf("[%d ints]", len(s))
			continue
		}
		info.Metadata[kv.Key] = kv.Value
	}
	for _, t := range f.Tensors {
		name := t.DType.String()
		if !t.DType.Valid() {
			name = gguf.GGMLTypeName(t.GGMLType)
		}
		info.DTypes[name]++
		info.Tensors = append(info.Tensors, TensorInfo{Name: t.Name, Shape: t.Shape, DType: name, Bytes: t.Size})
	}
	tok, err := ggufTokenizer(f)
	if err != nil {
		return nil, fmt.Errorf("gguf %s: tokenizer: %w", path, err)
	}
	info.Tokenizer = summarize(tok)
	return info, nil
}

func inspectHF(dir string) (*Info, error) {
	hc, err := hfconfig.Load(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	cfg, err := ConfigFromHF(hc)
	if err != nil {
		return nil, fmt.Errorf("hf %s: %w", dir, err)
	}
	info := &Info{Path: dir, Format: "hf", Architecture: hc.ModelType, Config: cfg, DTypes: map[string]int{}}
	info.Params = info.Config.NumParams()
	set, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer set.Close()
	names := set.Names()
	sort.Strings(names)
	for _, n := range names {
		t, _ := set.Tensor(n)
		info.DTypes[t.DTypeName]++
		info.Tensors = append(info.Tensors, TensorInfo{Name: n, Shape: t.Shape, DType: t.DTypeName, Bytes: t.End - t.Begin})
	}
	if tok, err := LoadTokenizer(dir); err == nil {
		info.Tokenizer = summarize(tok)
	}
	return info, nil
}

// LoadTokenizer reads only the tokenizer of a GGUF file or Hugging Face
// directory.
func LoadTokenizer(path string) (tokenizer.Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	if !st.IsDir() {
		if filepath.Base(path) == "config.json" {
			path = filepath.Dir(path)
		} else {
			f, err := gguf.Open(path)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			tok, err := ggufTokenizer(f)
			if err != nil {
				return nil, fmt.Errorf("gguf %s: tokenizer: %w", path, err)
			}
			if tok == nil {
				return nil, fmt.Errorf("gguf %s: no tokenizer metadata", path)
			}
			return tok, nil
		}
	}
	name := filepath.Join(path, "tokenizer.json")
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if tokenizer.IsHFSentencePiece(data) {
		return hfSentencePiece(path, name, data)
	}
	tok, err := tokenizer.ParseHFTokenizer(data, name)
	if err != nil {
		return nil, err
	}
	// transformers takes BOS and EOS from tokenizer_config.json; the
	// guesses from token names and config.json's ids come after it.
	cfg, err := readHFTokenizerConfig(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if cfg != nil {
		for _, st := range []struct {
			raw json.RawMessage
			set func(int32)
		}{{cfg.BOSToken, tok.SetBOS}, {cfg.EOSToken, tok.SetEOS}} {
			if text, ok := tokenText(st.raw); ok {
				if id, ok := tok.TokenID(text); ok {
					st.set(id)
				}
			}
		}
	}
	if hc, err := hfconfig.Load(filepath.Join(path, "config.json")); err == nil {
		if hc.BOSTokenID != nil && tok.BOS() < 0 {
			tok.SetBOS(int32(*hc.BOSTokenID))
		}
		if len(hc.EOSTokenID) > 0 && tok.EOS() < 0 {
			tok.SetEOS(int32(hc.EOSTokenID[0]))
		}
	}
	return tok, nil
}
