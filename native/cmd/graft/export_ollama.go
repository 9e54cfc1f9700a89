package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/graft-ml/graft/core/atomicfile"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/modelfile"
	"github.com/graft-ml/graft/core/modelpath"
	"github.com/graft-ml/graft/core/peft"
)

const (
	formatOllama = "ollama"
	// ollamaAdapterFile is the GGUF LoRA's name inside the export
	// directory; the Modelfile names it relative to itself, as Ollama
	// resolves ADAPTER paths from the Modelfile's directory.
	ollamaAdapterFile = "adapter.gguf"
)

// ollamaExport is what `graft export --format ollama` wrote.
type ollamaExport struct {
	Modelfile string   `json:"modelfile"`
	Adapter   string   `json:"adapter"`
	From      string   `json:"from"`
	Template  string   `json:"template"` // the chat format recognised, "" when TEMPLATE was left out
	Stops     []string `json:"stops,omitempty"`
	Tensors   int      `json:"tensors"`
}

// exportOllama writes dir as a directory `ollama create NAME -f
// dir/Modelfile` builds a model from: the adapter as a GGUF LoRA
// (adapter.gguf) and a Modelfile whose FROM is the base, ADAPTER the
// LoRA, TEMPLATE the base's chat template in Ollama's Go template syntax
// and PARAMETER stop its turn markers. A chat template of a format graft
// cannot convert is left out with a warning: Ollama then uses the base's
// own TEMPLATE (a model from Ollama's library has one) or none.
func exportOllama(src peft.Source, baseName, dir string, stderr io.Writer) (ollamaExport, error) {
	r, err := modelpath.Resolve(baseName)
	if err != nil {
		return ollamaExport{}, err
	}
	from := r.Path
	switch r.Store {
	case "ollama":
		from = baseName // Ollama finds its own models by name
	default:
		if from, err = filepath.Abs(r.Path); err != nil {
			return ollamaExport{}, err
		}
	}
	warn := func(format string, a ...any) {
		fmt.Fprintf(stderr, "graft export: warning: "+format+"\n", a...)
	}
	mf := &modelfile.Modelfile{From: from, Adapters: []string{"./" + ollamaAdapterFile}}
	res := ollamaExport{From: from}
	tmpl, source, err := model.ChatTemplateAt(r.Path)
	switch {
	case err != nil:
		return ollamaExport{}, err
	case tmpl == "":
		warn("%s has no chat template: the Modelfile has no TEMPLATE (Ollama will use the base's, if it has one)", baseName)
	default:
		conv, err := modelfile.ConvertChatTemplate(tmpl)
		if errors.Is(err, modelfile.ErrUnrecognisedTemplate) {
			warn("%s: %v; the Modelfile has no TEMPLATE rather than a wrong one: add one by hand (Ollama's syntax) if the base lacks it", source, err)
			break
		}
		if err != nil {
			return ollamaExport{}, err
		}
		mf.Template, mf.System = conv.Text, conv.System
		for _, s := range conv.Stops {
			mf.Parameters = append(mf.Parameters, modelfile.Parameter{Name: "stop", Value: s})
		}
		res.Template, res.Stops = conv.Family, conv.Stops
	}
	text, err := mf.Marshal()
	if err != nil {
		return ollamaExport{}, err
	}
	err = atomicfile.WriteDir(dir, func(tmp string) error {
		n, err := exportGGUFLoRA(src, r.Path, filepath.Join(tmp, ollamaAdapterFile), stderr)
		res.Tensors = n
		if err != nil {
			return err
		}
		return atomicfile.WriteFile(filepath.Join(tmp, "Modelfile"), text, 0o644)
	})
	if err != nil {
		return ollamaExport{}, err
	}
	res.Modelfile, res.Adapter = filepath.Join(dir, "Modelfile"), filepath.Join(dir, ollamaAdapterFile)
	return res, nil
}
