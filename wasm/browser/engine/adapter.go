package engine

import (
	"fmt"

	"github.com/graft-ml/graft/core/formats/bundle"
	"github.com/graft-ml/graft/core/peft"
)

// Export formats.
const (
	FormatPEFT    = "peft"    // adapter_config.json + adapter_model.safetensors
	FormatMsgpack = "msgpack" // the same files in one msgpack bundle
)

// ExportFiles encodes the adapter in Hugging Face PEFT's format.
func (e *Engine) ExportFiles() (peft.Files, error) {
	if e.adapter == nil {
		return nil, fmt.Errorf("export: %w", errNoAdapter)
	}
	files, err := e.adapter.Files()
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return files, nil
}

// ExportBundle encodes the adapter's PEFT files as one msgpack bundle, the
// form graft's CLI loads with --adapter file.msgpack.
func (e *Engine) ExportBundle() ([]byte, error) {
	files, err := e.ExportFiles()
	if err != nil {
		return nil, err
	}
	b, err := bundle.Encode(files)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return b, nil
}

// ImportBundle replaces the attached adapter with the one in a msgpack
// bundle of PEFT files.
func (e *Engine) ImportBundle(data []byte, name string) (string, error) {
	files, err := bundle.Decode(data, name)
	if err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	return e.ImportFiles(files, name)
}

// ImportFiles replaces the attached adapter with the one in PEFT files
// (adapter_config.json and adapter_model.safetensors, or a mixed stack's
// graft_stack.json and its parts' files one directory down). On failure the
// adapter attached before stays. It returns the adapter's peft_type.
func (e *Engine) ImportFiles(files peft.Files, name string) (string, error) {
	_, single := files[peft.ConfigFileName]
	_, stack := files[peft.StackManifestFileName]
	if !single && !stack {
		return "", fmt.Errorf("import %s: no %s (or a stack's %s) among the files", name, peft.ConfigFileName, peft.StackManifestFileName)
	}
	var previous peft.Files
	if e.adapter != nil {
		var err error
		if previous, err = e.adapter.Files(); err != nil {
			return "", fmt.Errorf("import %s: keep the current adapter: %w", name, err)
		}
		if err := e.DropAdapter(); err != nil {
			return "", fmt.Errorf("import %s: %w", name, err)
		}
	}
	a, _, err := peft.LoadAdapter(e.m, peft.InMemory(name, files))
	if err != nil {
		if previous != nil {
			// The previous adapter loaded before, so it loads again.
			e.adapter, _, _ = peft.LoadAdapter(e.m, peft.InMemory("previous adapter", previous))
		}
		return "", fmt.Errorf("import: %w", err)
	}
	e.adapter = a
	return a.PeftType(), nil
}
