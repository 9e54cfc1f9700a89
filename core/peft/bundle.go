package peft

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/graft-ml/graft/core/formats/bundle"
)

// OpenAdapterPath opens an adapter wherever graft accepts one: a PEFT
// adapter directory, or a msgpack bundle file (see core/formats/bundle)
// whose files are read into memory.
func OpenAdapterPath(path string) (Source, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("peft adapter: %w", err)
	}
	if st.IsDir() {
		return Dir(path), nil
	}
	if strings.HasSuffix(strings.ToLower(path), ".gguf") {
		return nil, fmt.Errorf("peft adapter %s: a GGUF file is llama.cpp's export format, which graft does not load; give the PEFT adapter directory or a .msgpack bundle", path)
	}
	files, err := bundle.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("peft adapter (a file, so read as a bundle): %w", err)
	}
	return InMemory(path, files), nil
}

// ReadFiles reads an adapter's files from src: adapter_config.json (which
// must be a JSON object naming its peft_type) and
// adapter_model.safetensors, as a bundle carries them; for a Stack, its
// manifest and those two files of every part, under "<subfolder>/".
func ReadFiles(src Source) (Files, error) {
	man, isStack, err := readStackManifest(src)
	if err != nil {
		return nil, err
	}
	if !isStack {
		return readAdapterFiles(src)
	}
	manifest, err := src.ReadFile(StackManifestFileName)
	if err != nil {
		return nil, fmt.Errorf("adapter stack %s: %w", sourcePath(src, StackManifestFileName), err)
	}
	out := Files{StackManifestFileName: manifest}
	for _, part := range man.Parts {
		files, err := readAdapterFiles(subSource{src, part.Subfolder})
		if err != nil {
			return nil, err
		}
		for name, data := range files {
			out[part.Subfolder+"/"+name] = data
		}
	}
	return out, nil
}

// readAdapterFiles is ReadFiles for one adapter.
func readAdapterFiles(src Source) (Files, error) {
	cfgPath := sourcePath(src, ConfigFileName)
	cfg, err := src.ReadFile(ConfigFileName)
	if err != nil {
		return nil, fmt.Errorf("peft config %s: %w", cfgPath, err)
	}
	var head struct {
		PeftType string `json:"peft_type"`
	}
	if err := json.Unmarshal(cfg, &head); err != nil {
		return nil, fmt.Errorf("peft config %s: %w", cfgPath, err)
	}
	if head.PeftType == "" {
		return nil, fmt.Errorf("peft config %s: peft_type is missing", cfgPath)
	}
	weights, err := readWeightsFile(src, WeightsFileName)
	if err != nil {
		return nil, err
	}
	return Files{ConfigFileName: cfg, WeightsFileName: weights}, nil
}

// WriteBundle writes files as a msgpack bundle at path, atomically.
func WriteBundle(path string, files Files) error {
	return bundle.WriteFile(path, files)
}
