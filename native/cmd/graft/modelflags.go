package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/modelpath"
	"github.com/graft-ml/graft/core/peft"
)

// modelFlags are the flags every command that loads a model shares.
type modelFlags struct {
	// stderr hears what loading says (nil: os.Stderr); commands set it to
	// their own.
	stderr      io.Writer
	path        string
	device      string
	adapters    stringList
	quantize    string
	doubleQuant bool
}

// stringList is a flag that may be repeated.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
func (l *stringList) Type() string       { return "string" }

func addModelFlags(fs *pflag.FlagSet) *modelFlags {
	mf := &modelFlags{}
	fs.StringVar(&mf.path, "model", "", "the model: "+modelHelp)
	fs.StringVar(&mf.device, "device", "cpu", deviceHelp)
	fs.StringVar(&mf.quantize, "quantize", "", "quantize the frozen F32/F16/BF16 projections on load: nf4 (QLoRA); already quantized ones (Q4_K, Q8_0, ...) are trained on as stored")
	fs.BoolVar(&mf.doubleQuant, "double-quant", false, "with --quantize nf4: also quantize the block scales (bitsandbytes' double quantization)")
	return mf
}

const modelHelp = "a .gguf file or Hugging Face `dir`, a Hugging Face repo id in the local cache (ORG/NAME, ORG/NAME:QUANT for a GGUF repo), or an Ollama model pulled locally (llama3.2, qwen2.5:0.5b); see graft models"

// resolveModel finds the model --model names (see modelpath.Resolve),
// saying on stderr which file a name from a store led to. It never uses
// the network.
func resolveModel(name string) (string, error) {
	r, err := modelpath.Resolve(name)
	if err != nil {
		return "", err
	}
	if r.Store != "path" {
		fmt.Fprintf(os.Stderr, "graft: %s: %s\n", name, r.Path)
	}
	return r.Path, nil
}

// addAdapterFlag lets a command apply PEFT adapters on top of the model.
func (mf *modelFlags) addAdapterFlag(fs *pflag.FlagSet) {
	fs.Var(&mf.adapters, "adapter", "adapter to apply: a PEFT `dir` or a .msgpack bundle (repeat to combine several)")
}

// errw is where loading reports.
func (mf *modelFlags) errw() io.Writer {
	if mf.stderr != nil {
		return mf.stderr
	}
	return os.Stderr
}

func (mf *modelFlags) load() (*model.Model, error) {
	if mf.path == "" {
		return nil, usagef("--model is required")
	}
	switch mf.quantize {
	case "", "nf4":
	default:
		return nil, usagef("--quantize %q: supported: nf4", mf.quantize)
	}
	if mf.doubleQuant && mf.quantize == "" {
		return nil, usagef("--double-quant needs --quantize nf4")
	}
	be, err := openDevice(mf.device, os.Stderr)
	if err != nil {
		return nil, err
	}
	path, err := resolveModel(mf.path)
	if err != nil {
		return nil, err
	}
	m, err := model.Load(path, be)
	if err != nil {
		return nil, err
	}
	if mf.quantize == "nf4" {
		if err := model.QuantizeNF4(m, mf.doubleQuant); err != nil {
			m.Free()
			return nil, err
		}
		if note := keptQuantizedNote(m); note != "" {
			fmt.Fprintf(mf.errw(), "graft: %s\n", note)
		}
	}
	if _, err := mf.applyAdapters(m); err != nil {
		m.Free()
		return nil, err
	}
	return m, nil
}

// applyAdapters loads every --adapter (of any PEFT method graft knows);
// all of them act together.
func (mf *modelFlags) applyAdapters(m *model.Model) ([]peft.Adapter, error) {
	var out []peft.Adapter
	for _, dir := range mf.adapters {
		src, err := peft.OpenAdapterPath(dir)
		if err != nil {
			return nil, err
		}
		a, warnings, err := peft.LoadAdapter(m, src)
		if err != nil {
			return nil, err
		}
		for _, w := range warnings {
			fmt.Fprintf(mf.errw(), "graft: %s: %s\n", dir, w)
		}
		out = append(out, a)
	}
	return out, nil
}

// keptQuantizedNote says that --quantize nf4 left a base's already
// quantized projections (a Q4_K_M or Q8_0 GGUF) as they are, and that
// training runs on them directly; "" when every projection was a float
// type and is NF4 now.
func keptQuantizedNote(m *model.Model) string {
	counts := model.QuantizedLinears(m)
	if len(counts) == 0 {
		return ""
	}
	total, kept := len(m.Linears()), 0
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d of %d projections are %s", counts[name], total, name))
		kept += counts[name]
	}
	rest := ""
	if kept < total {
		rest = fmt.Sprintf("; the other %d are NF4 now", total-kept)
	}
	return fmt.Sprintf("--quantize nf4: %s already; graft trains on them as stored rather than rounding them again to NF4 "+
		"(QLoRA's 4-bit type applies to F32, F16 and BF16 weights)%s", strings.Join(parts, ", "), rest)
}
