// Package modelpath finds the model a user names: a file or directory, a
// Hugging Face repo id already downloaded to the local Hugging Face cache
// (Qwen/Qwen2.5-0.5B-Instruct), or an Ollama model already pulled to the
// local Ollama store (llama3.2, qwen2.5:0.5b). It reads only the local
// disk, never the network, and lists what the stores hold (List).
//
// The Hugging Face cache is laid out as huggingface_hub lays it out:
// HUB/models--ORG--NAME/refs/main holds the commit of the main branch and
// HUB/models--ORG--NAME/snapshots/COMMIT the repository's files. The
// Ollama store keeps a manifest per model and tag,
// MODELS/manifests/registry.ollama.ai/library/NAME/TAG, whose layer of
// type application/vnd.ollama.image.model names the GGUF blob,
// MODELS/blobs/sha256-DIGEST.
package modelpath

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Root is one store's directory and what chose it: the environment
// variable that set it, or "default".
type Root struct {
	Dir  string `json:"dir"`
	From string `json:"from"`
}

// Stores are the places names are looked up in.
type Stores struct {
	// HF is the Hugging Face hub cache (the directory holding
	// models--ORG--NAME); an empty Dir skips it.
	HF Root `json:"huggingface"`
	// Ollama are Ollama model directories (holding manifests/ and
	// blobs/), tried in order.
	Ollama []Root `json:"ollama"`
}

// DefaultStores returns the stores the environment points at, as
// huggingface_hub and Ollama find them: HF_HUB_CACHE (or the older
// HUGGINGFACE_HUB_CACHE), else HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub; and
// OLLAMA_MODELS, else ~/.ollama/models and, on Linux, the system
// service's /usr/share/ollama/.ollama/models.
func DefaultStores() Stores {
	var s Stores
	home, _ := os.UserHomeDir()
	switch {
	case os.Getenv("HF_HUB_CACHE") != "":
		s.HF = Root{os.Getenv("HF_HUB_CACHE"), "HF_HUB_CACHE"}
	case os.Getenv("HUGGINGFACE_HUB_CACHE") != "":
		s.HF = Root{os.Getenv("HUGGINGFACE_HUB_CACHE"), "HUGGINGFACE_HUB_CACHE"}
	case os.Getenv("HF_HOME") != "":
		s.HF = Root{filepath.Join(os.Getenv("HF_HOME"), "hub"), "HF_HOME"}
	case os.Getenv("XDG_CACHE_HOME") != "":
		s.HF = Root{filepath.Join(os.Getenv("XDG_CACHE_HOME"), "huggingface", "hub"), "XDG_CACHE_HOME"}
	case home != "":
		s.HF = Root{filepath.Join(home, ".cache", "huggingface", "hub"), "default"}
	}
	if dir := os.Getenv("OLLAMA_MODELS"); dir != "" {
		s.Ollama = []Root{{dir, "OLLAMA_MODELS"}}
	} else {
		if home != "" {
			s.Ollama = append(s.Ollama, Root{filepath.Join(home, ".ollama", "models"), "default"})
		}
		// Ollama's Linux installer runs the server as the user "ollama",
		// whose home this is.
		if service := "/usr/share/ollama/.ollama/models"; home != "/usr/share/ollama" {
			if _, err := os.Stat(service); err == nil {
				s.Ollama = append(s.Ollama, Root{service, "ollama service"})
			}
		}
	}
	return s
}

// Resolved is where a name led.
type Resolved struct {
	// Path is a file or directory model.Load reads.
	Path string `json:"path"`
	// Store is "path" (the name was a path), "huggingface" or "ollama".
	Store string `json:"store"`
	// Revision is the Hugging Face commit, or the Ollama blob's digest.
	Revision string `json:"revision,omitempty"`
}

// Resolve finds name with the default stores (see Stores.Resolve).
func Resolve(name string) (Resolved, error) { return DefaultStores().Resolve(name) }

// NotFoundError says where a name was looked for.
type NotFoundError struct {
	Name   string
	Looked []string // each place, with what it would have been
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("model %q not found; looked for:\n  %s", e.Name, strings.Join(e.Looked, "\n  "))
}

// Resolve finds name: an existing file or directory as it is; else a
// Hugging Face repo id in the cache (ORG/NAME, with @REVISION for a branch
// or commit other than main, and for repositories of GGUF files
// ORG/NAME:QUANT or ORG/NAME/FILE.gguf to pick one); else an Ollama name
// (MODEL, MODEL:TAG, NAMESPACE/MODEL:TAG, HOST/NAMESPACE/MODEL:TAG). A
// name found nowhere is a *NotFoundError listing every place looked in; a
// name found but unusable (a snapshot without weights, several GGUF files
// to choose from) is an error saying so.
func (s Stores) Resolve(name string) (Resolved, error) {
	if name == "" {
		return Resolved{}, fmt.Errorf("empty model name")
	}
	if _, err := os.Stat(name); err == nil {
		return Resolved{Path: name, Store: "path"}, nil
	}
	nf := &NotFoundError{Name: name, Looked: []string{fmt.Sprintf("%s (a file or directory)", name)}}
	if isPathLike(name) {
		return Resolved{}, nf
	}
	if s.HF.Dir != "" {
		if ref, ok := parseHFName(name); ok {
			r, looked, err := s.resolveHF(ref)
			if err != nil || r.Path != "" {
				return r, err
			}
			nf.Looked = append(nf.Looked, looked)
		}
	}
	if ref, ok := parseOllamaName(name); ok {
		for _, root := range s.Ollama {
			r, looked, err := resolveOllama(root, ref)
			if err != nil || r.Path != "" {
				return r, err
			}
			nf.Looked = append(nf.Looked, looked)
		}
	}
	return Resolved{}, nf
}

// isPathLike reports whether name can only be meant as a path.
func isPathLike(name string) bool {
	return filepath.IsAbs(name) || strings.HasPrefix(name, "."+string(filepath.Separator)) || strings.HasPrefix(name, "./") ||
		strings.HasPrefix(name, "..") || strings.HasPrefix(name, "~") || strings.ContainsRune(name, '\\')
}

// validPart reports whether s is a name part both stores allow: letters,
// digits, '-', '_' and '.', not starting with '.' or '-'.
func validPart(s string) bool {
	if s == "" || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}
