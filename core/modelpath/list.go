package modelpath

import "sort"

// Entry is one model a store holds.
type Entry struct {
	// Name resolves to this entry: ORG/NAME (ORG/NAME/FILE.gguf where the
	// repository holds several GGUF files), or the Ollama name.
	Name string `json:"name"`
	// Store is "huggingface" or "ollama".
	Store string `json:"store"`
	// Format is "hf" (a directory with config.json and safetensors) or
	// "gguf".
	Format string `json:"format"`
	Path   string `json:"path"`
	// Revision is the Hugging Face commit, or the Ollama blob.
	Revision string `json:"revision,omitempty"`
	// Size is the bytes on disk (for a directory, of all its files).
	Size int64 `json:"size"`
}

// List returns the models in the stores, Hugging Face's first, each
// store's sorted by name. A store that is missing or unreadable lists
// nothing.
func (s Stores) List() []Entry {
	hf := s.listHF()
	sort.Slice(hf, func(i, j int) bool { return hf[i].Name < hf[j].Name })
	out := hf
	for _, root := range s.Ollama {
		o := listOllama(root)
		sort.Slice(o, func(i, j int) bool { return o[i].Name < o[j].Name })
		out = append(out, o...)
	}
	return out
}
