package modelpath

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Ollama's defaults for the parts a name leaves out.
const (
	ollamaHost      = "registry.ollama.ai"
	ollamaNamespace = "library"
	ollamaTag       = "latest"
	// ollamaModelLayer is the media type of the GGUF weights in a manifest.
	ollamaModelLayer = "application/vnd.ollama.image.model"
)

// ollamaRef is a parsed Ollama name, [HOST/][NAMESPACE/]MODEL[:TAG].
type ollamaRef struct{ host, namespace, model, tag string }

func parseOllamaName(name string) (ollamaRef, bool) {
	ref := ollamaRef{host: ollamaHost, namespace: ollamaNamespace, tag: ollamaTag}
	rest := name
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i:], "/") {
		rest, ref.tag = rest[:i], rest[i+1:]
	}
	parts := strings.Split(rest, "/")
	switch len(parts) {
	case 1:
		ref.model = parts[0]
	case 2:
		ref.namespace, ref.model = parts[0], parts[1]
	case 3:
		ref.host, ref.namespace, ref.model = parts[0], parts[1], parts[2]
	default:
		return ollamaRef{}, false
	}
	for _, p := range []string{ref.host, ref.namespace, ref.model, ref.tag} {
		if !validPart(p) {
			return ollamaRef{}, false
		}
	}
	return ref, true
}

// String is the name as Ollama shows it: defaults left out.
func (r ollamaRef) String() string {
	name := r.model + ":" + r.tag
	switch {
	case r.host != ollamaHost:
		return r.host + "/" + r.namespace + "/" + name
	case r.namespace != ollamaNamespace:
		return r.namespace + "/" + name
	}
	return name
}

func (r ollamaRef) manifest(root string) string {
	return filepath.Join(root, "manifests", r.host, r.namespace, r.model, r.tag)
}

// ollamaManifest is the part of a manifest graft reads.
type ollamaManifest struct {
	Layers []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	} `json:"layers"`
}

// resolveOllama looks ref up in one Ollama store. An empty Resolved with a
// nil error means not there; looked says where it looked.
func resolveOllama(root Root, ref ollamaRef) (Resolved, string, error) {
	path := ref.manifest(root.Dir)
	looked := fmt.Sprintf("%s (Ollama, %s)", path, root.From)
	data, err := os.ReadFile(path)
	if err != nil {
		// Ollama stores names lower-case; try that before giving up.
		lower := ollamaRef{strings.ToLower(ref.host), strings.ToLower(ref.namespace), strings.ToLower(ref.model), strings.ToLower(ref.tag)}
		if lower == ref {
			return Resolved{}, looked, nil
		}
		if data, err = os.ReadFile(lower.manifest(root.Dir)); err != nil {
			return Resolved{}, looked, nil
		}
		path = lower.manifest(root.Dir)
	}
	blob, _, err := ollamaBlob(root.Dir, path, data)
	if err != nil {
		return Resolved{}, looked, err
	}
	return Resolved{Path: blob, Store: "ollama", Revision: filepath.Base(blob)}, looked, nil
}

// ollamaBlob finds the model layer's blob of a manifest.
func ollamaBlob(root, manifest string, data []byte) (string, int64, error) {
	var m ollamaManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return "", 0, fmt.Errorf("ollama manifest %s: %w", manifest, err)
	}
	for _, l := range m.Layers {
		if l.MediaType != ollamaModelLayer {
			continue
		}
		algo, hex, ok := strings.Cut(l.Digest, ":")
		if !ok || !validPart(algo) || !validPart(hex) {
			return "", 0, fmt.Errorf("ollama manifest %s: model layer digest %q is not ALGO:HEX", manifest, l.Digest)
		}
		blob := filepath.Join(root, "blobs", algo+"-"+hex)
		if _, err := os.Stat(blob); err != nil {
			return "", 0, fmt.Errorf("ollama manifest %s: the model blob %s is missing (an interrupted pull?)", manifest, blob)
		}
		return blob, l.Size, nil
	}
	return "", 0, fmt.Errorf("ollama manifest %s has no %s layer", manifest, ollamaModelLayer)
}

// listOllama lists one store's models.
func listOllama(root Root) []Entry {
	base := filepath.Join(root.Dir, "manifests")
	var out []Entry
	filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return nil
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 4 {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		blob, size, err := ollamaBlob(root.Dir, p, data)
		if err != nil {
			return nil
		}
		ref := ollamaRef{parts[0], parts[1], parts[2], parts[3]}
		out = append(out, Entry{Name: ref.String(), Store: "ollama", Format: "gguf", Path: blob, Revision: filepath.Base(blob), Size: size})
		return nil
	})
	return out
}
