package main

import (
	"flag"
	"fmt"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"os"
	"strings"
)

// modelFlags are the flags every command that loads a model shares.
type modelFlags struct {
	path     string
	device   string
	adapters stringList
}

// stringList is a flag that may be repeated.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func addModelFlags(fs *flag.FlagSet) *modelFlags {
	mf := &modelFlags{}
	fs.StringVar(&mf.path, "model", "", "model `path`: a .gguf file or a Hugging Face directory")
	fs.StringVar(&mf.device, "device", "cpu", "where to run: cpu")
	return mf
}

// addAdapterFlag lets a command apply PEFT adapters on top of the model.
func (mf *modelFlags) addAdapterFlag(fs *flag.FlagSet) {
	fs.Var(&mf.adapters, "adapter", "PEFT adapter `dir` to apply (repeat to combine several)")
}

func (mf *modelFlags) load() (*model.Model, error) {
	if mf.path == "" {
		return nil, usagef("--model is required")
	}
	if mf.device != "cpu" {
		return nil, usagef("--device %q: this build runs on cpu only", mf.device)
	}
	m, err := model.Load(mf.path, cpu.New())
	if err != nil {
		return nil, err
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
		a, warnings, err := peft.LoadAdapter(m, peft.Dir(dir))
		if err != nil {
			return nil, err
		}
		for _, w := range warnings {
			fmt.Fprintf(os.Stderr, "graft: %s: %s\n", dir, w)
		}
		out = append(out, a)
	}
	return out, nil
}
