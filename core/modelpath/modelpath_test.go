package modelpath

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeStores builds a Hugging Face cache and an Ollama store in a temp
// dir, laid out as huggingface_hub and Ollama lay them out (snapshot files
// are links into blobs/).
func fakeStores(t *testing.T) (Stores, string) {
	t.Helper()
	root := t.TempDir()
	hub := filepath.Join(root, "hub")
	write := func(path, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// link puts a blob in repo/blobs and links snapshot/file to it.
	blobN := 0
	link := func(repo, commit, file, body string) {
		t.Helper()
		blobN++
		blob := filepath.Join(repo, "blobs", strings.Repeat("b", 10)+string(rune('a'+blobN)))
		write(blob, body)
		dst := filepath.Join(repo, "snapshots", commit, filepath.FromSlash(file))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(filepath.Dir(dst), blob)
		if err := os.Symlink(rel, dst); err != nil {
			t.Fatal(err)
		}
	}

	// An HF-format repository with two snapshots: main and a dev branch.
	qwen := filepath.Join(hub, "models--Qwen--Qwen2.5-0.5B-Instruct")
	write(filepath.Join(qwen, "refs", "main"), "c0ffee1\n")
	write(filepath.Join(qwen, "refs", "dev"), "0dd0dd0")
	link(qwen, "c0ffee1", "config.json", `{"model_type": "qwen2"}`)
	link(qwen, "c0ffee1", "model.safetensors", "weights")
	link(qwen, "0dd0dd0", "config.json", `{"model_type": "qwen2"}`)
	// A repository of GGUF files (and a projector, which is no model).
	gguf := filepath.Join(hub, "models--bartowski--Llama-3.2-1B-Instruct-GGUF")
	write(filepath.Join(gguf, "refs", "main"), "feed5")
	link(gguf, "feed5", "Llama-3.2-1B-Instruct-Q4_K_M.gguf", "q4")
	link(gguf, "feed5", "Llama-3.2-1B-Instruct-Q8_0.gguf", "q8")
	link(gguf, "feed5", "mmproj-f16.gguf", "proj")
	// One GGUF file and no refs/main (copied from another machine).
	smol := filepath.Join(hub, "models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF")
	link(smol, "5a5a5a", "smollm2-135m-instruct-q8_0.gguf", "smol")
	// An interrupted download: refs/main, no snapshot.
	write(filepath.Join(hub, "models--org--broken", "refs", "main"), "abc")
	// Not a model.
	write(filepath.Join(hub, "datasets--org--data", "refs", "main"), "abc")

	ollama := filepath.Join(root, "ollama")
	manifest := func(name, digest string) {
		write(filepath.Join(ollama, "manifests", filepath.FromSlash(name)),
			`{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
			  "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:c0c0", "size": 1},
			  "layers": [{"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:7e7e", "size": 5},
			             {"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:`+digest+`", "size": 4}]}`)
	}
	manifest("registry.ollama.ai/library/llama3.2/latest", "aaaa")
	manifest("registry.ollama.ai/library/qwen2.5/0.5b", "bbbb")
	manifest("registry.ollama.ai/someone/tiny/q4", "cccc")
	manifest("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF/Q4_K_M", "dddd")
	manifest("registry.ollama.ai/library/gone/latest", "eeee") // blob missing
	for _, d := range []string{"aaaa", "bbbb", "cccc", "dddd"} {
		write(filepath.Join(ollama, "blobs", "sha256-"+d), "GGUF")
	}
	return Stores{HF: Root{hub, "HF_HUB_CACHE"}, Ollama: []Root{{ollama, "OLLAMA_MODELS"}}}, root
}

func TestResolveByName(t *testing.T) {
	s, root := fakeStores(t)
	hub, ollama := filepath.Join(root, "hub"), filepath.Join(root, "ollama")
	qwen := filepath.Join(hub, "models--Qwen--Qwen2.5-0.5B-Instruct", "snapshots")
	gguf := filepath.Join(hub, "models--bartowski--Llama-3.2-1B-Instruct-GGUF", "snapshots", "feed5")
	file := filepath.Join(root, "local.gguf")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want Resolved
	}{
		{file, Resolved{file, "path", ""}},
		{"Qwen/Qwen2.5-0.5B-Instruct", Resolved{filepath.Join(qwen, "c0ffee1"), "huggingface", "c0ffee1"}},
		{"Qwen/Qwen2.5-0.5B-Instruct@dev", Resolved{filepath.Join(qwen, "0dd0dd0"), "huggingface", "0dd0dd0"}},
		{"Qwen/Qwen2.5-0.5B-Instruct@0dd0dd0", Resolved{filepath.Join(qwen, "0dd0dd0"), "huggingface", "0dd0dd0"}},
		{"bartowski/Llama-3.2-1B-Instruct-GGUF:q8_0", Resolved{filepath.Join(gguf, "Llama-3.2-1B-Instruct-Q8_0.gguf"), "huggingface", "feed5"}},
		{"bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf", Resolved{filepath.Join(gguf, "Llama-3.2-1B-Instruct-Q4_K_M.gguf"), "huggingface", "feed5"}},
		{"HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", Resolved{filepath.Join(hub, "models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF", "snapshots", "5a5a5a", "smollm2-135m-instruct-q8_0.gguf"), "huggingface", "5a5a5a"}},
		{"llama3.2", Resolved{filepath.Join(ollama, "blobs", "sha256-aaaa"), "ollama", "sha256-aaaa"}},
		{"llama3.2:latest", Resolved{filepath.Join(ollama, "blobs", "sha256-aaaa"), "ollama", "sha256-aaaa"}},
		{"library/llama3.2", Resolved{filepath.Join(ollama, "blobs", "sha256-aaaa"), "ollama", "sha256-aaaa"}},
		{"qwen2.5:0.5b", Resolved{filepath.Join(ollama, "blobs", "sha256-bbbb"), "ollama", "sha256-bbbb"}},
		{"Qwen2.5:0.5B", Resolved{filepath.Join(ollama, "blobs", "sha256-bbbb"), "ollama", "sha256-bbbb"}},
		{"someone/tiny:q4", Resolved{filepath.Join(ollama, "blobs", "sha256-cccc"), "ollama", "sha256-cccc"}},
		{"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", Resolved{filepath.Join(ollama, "blobs", "sha256-dddd"), "ollama", "sha256-dddd"}},
	}
	for _, tt := range tests {
		got, err := s.Resolve(tt.name)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
		if _, err := os.Stat(got.Path); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestResolveMissingListsWhereItLooked(t *testing.T) {
	s, root := fakeStores(t)
	_, err := s.Resolve("meta-llama/Llama-3.2-1B-Instruct")
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("err = %v, want a NotFoundError", err)
	}
	want := []string{
		"meta-llama/Llama-3.2-1B-Instruct (a file or directory)",
		filepath.Join(root, "hub", "models--meta-llama--Llama-3.2-1B-Instruct") + " (Hugging Face cache, HF_HUB_CACHE)",
		filepath.Join(root, "ollama", "manifests", "registry.ollama.ai", "meta-llama", "Llama-3.2-1B-Instruct", "latest") + " (Ollama, OLLAMA_MODELS)",
	}
	if !reflect.DeepEqual(nf.Looked, want) {
		t.Fatalf("looked in\n%s\nwant\n%s", strings.Join(nf.Looked, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %q", err, w)
		}
	}
	// An Ollama-style name is looked for in both stores too.
	_, err = s.Resolve("mistral:7b")
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), filepath.Join("library", "mistral", "7b")) || !strings.Contains(err.Error(), "models--mistral") {
		t.Fatalf("err = %v", err)
	}
	// A path is only a path.
	_, err = s.Resolve("./nope.gguf")
	if !errors.As(err, &nf) || len(nf.Looked) != 1 {
		t.Fatalf("err = %v", err)
	}
}

func TestResolveFoundButUnusable(t *testing.T) {
	s, _ := fakeStores(t)
	for name, want := range map[string]string{
		"bartowski/Llama-3.2-1B-Instruct-GGUF":          "holds 2 GGUF files; name one as bartowski/Llama-3.2-1B-Instruct-GGUF:QUANT",
		"bartowski/Llama-3.2-1B-Instruct-GGUF:Q5_K_M":   `0 GGUF files match "Q5_K_M"`,
		"bartowski/Llama-3.2-1B-Instruct-GGUF/x.gguf":   "has no x.gguf (GGUF files: Llama-3.2-1B-Instruct-Q4_K_M.gguf, Llama-3.2-1B-Instruct-Q8_0.gguf)",
		"Qwen/Qwen2.5-0.5B-Instruct@v9":                 "no refs/v9 and no snapshot v9",
		"org/broken":                                    "refs/main names commit abc, which is not in",
		"gone":                                          "the model blob",
		"HuggingFaceTB/SmolLM2-135M-Instruct-GGUF@main": "",
	} {
		_, err := s.Resolve(name)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		var nf *NotFoundError
		if err == nil || errors.As(err, &nf) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want one mentioning %q", name, err, want)
		}
	}
}

func TestList(t *testing.T) {
	s, root := fakeStores(t)
	var got []string
	for _, e := range s.List() {
		got = append(got, e.Store+" "+e.Format+" "+e.Name)
		if _, err := os.Stat(e.Path); err != nil {
			t.Errorf("%s: %v", e.Name, err)
		}
		if r, err := s.Resolve(e.Name); err != nil || r.Path != e.Path {
			t.Errorf("%s lists %s but resolves to %+v, %v", e.Name, e.Path, r, err)
		}
	}
	want := []string{
		"huggingface gguf HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
		"huggingface hf Qwen/Qwen2.5-0.5B-Instruct",
		"huggingface gguf bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf",
		"huggingface gguf bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q8_0.gguf",
		"ollama gguf hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
		"ollama gguf llama3.2:latest",
		"ollama gguf qwen2.5:0.5b",
		"ollama gguf someone/tiny:q4",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("listed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if e := s.List()[1]; e.Size != int64(len(`{"model_type": "qwen2"}`)+len("weights")) || e.Revision != "c0ffee1" {
		t.Errorf("Qwen entry %+v", e)
	}
	_ = root
}

func TestDefaultStores(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "OLLAMA_MODELS"} {
		t.Setenv(k, "")
	}
	s := DefaultStores()
	if s.HF != (Root{filepath.Join(home, ".cache", "huggingface", "hub"), "default"}) || s.Ollama[0] != (Root{filepath.Join(home, ".ollama", "models"), "default"}) {
		t.Fatalf("defaults %+v", s)
	}
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if s := DefaultStores(); s.HF.Dir != filepath.Join("/xdg", "huggingface", "hub") {
		t.Fatalf("XDG: %+v", s.HF)
	}
	t.Setenv("HF_HOME", "/hfhome")
	if s := DefaultStores(); s.HF != (Root{filepath.Join("/hfhome", "hub"), "HF_HOME"}) {
		t.Fatalf("HF_HOME: %+v", s.HF)
	}
	t.Setenv("HF_HUB_CACHE", "/hubcache")
	t.Setenv("OLLAMA_MODELS", "/ollama")
	if s := DefaultStores(); s.HF != (Root{"/hubcache", "HF_HUB_CACHE"}) || !reflect.DeepEqual(s.Ollama, []Root{{"/ollama", "OLLAMA_MODELS"}}) {
		t.Fatalf("explicit: %+v", s)
	}
}

func TestParseNames(t *testing.T) {
	for _, bad := range []string{"", "a//b", "org/na me", "-x", "x:", "org/name@", "org/name/../etc", "a/b/c/d:e:f"} {
		if ref, ok := parseHFName(bad); ok && bad != "a/b/c/d:e:f" {
			t.Errorf("parseHFName(%q) = %+v", bad, ref)
		}
	}
	if ref, ok := parseOllamaName("a/b/c/d"); ok {
		t.Errorf("parseOllamaName = %+v", ref)
	}
	if ref, _ := parseOllamaName("hf.co/org/repo:Q4_K_M"); ref != (ollamaRef{"hf.co", "org", "repo", "Q4_K_M"}) {
		t.Errorf("hf.co name: %+v", ref)
	}
}
