package main

import (
	"flag"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
)

// modelFlags are the flags every command that loads a model shares.
type modelFlags struct {
	path   string
	device string
}

func addModelFlags(fs *flag.FlagSet) *modelFlags {
	mf := &modelFlags{}
	fs.StringVar(&mf.path, "model", "", "model `path`: a .gguf file or a Hugging Face directory")
	fs.StringVar(&mf.device, "device", "cpu", "where to run: cpu")
	return mf
}

func (mf *modelFlags) load() (*model.Model, error) {
	if mf.path == "" {
		return nil, usagef("--model is required")
	}
	if mf.device != "cpu" {
		return nil, usagef("--device %q: this build runs on cpu only", mf.device)
	}
	return model.Load(mf.path, cpu.New())
}
