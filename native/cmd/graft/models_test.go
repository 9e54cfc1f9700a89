package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// localStores puts stories260K in a fake Hugging Face cache (as a GGUF
// repository) and a fake Ollama store, and points graft at them.
func localStores(t *testing.T) (hub, ollama string) {
	t.Helper()
	abs, err := filepath.Abs(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	hub, ollama = filepath.Join(root, "hub"), filepath.Join(root, "ollama")
	mk := func(path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	repo := filepath.Join(hub, "models--karpathy--stories260K-GGUF")
	snap := filepath.Join(repo, "snapshots", "1234abcd", "stories260K.gguf")
	mk(snap)
	if err := os.Symlink(abs, snap); err != nil {
		t.Fatal(err)
	}
	mk(filepath.Join(repo, "refs", "main"))
	if err := os.WriteFile(filepath.Join(repo, "refs", "main"), []byte("1234abcd"), 0o644); err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(ollama, "blobs", "sha256-5707")
	mk(blob)
	if err := os.Symlink(abs, blob); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(ollama, "manifests", "registry.ollama.ai", "library", "stories", "260k")
	mk(manifest)
	if err := os.WriteFile(manifest, []byte(`{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:5707","size":1185376}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_HUB_CACHE", hub)
	t.Setenv("OLLAMA_MODELS", ollama)
	return hub, ollama
}

func TestModelsByName(t *testing.T) {
	hub, ollama := localStores(t)
	var list struct {
		Models []struct {
			Name, Store, Format, Path string
		} `json:"models"`
	}
	graftJSON(t, &list, "models")
	if len(list.Models) != 2 || list.Models[0].Name != "karpathy/stories260K-GGUF" || list.Models[1].Name != "stories:260k" ||
		!strings.HasPrefix(list.Models[0].Path, hub) || !strings.HasPrefix(list.Models[1].Path, ollama) {
		t.Fatalf("models %+v", list.Models)
	}
	out, _, code := graft(t, "models")
	if code != 0 || !strings.Contains(out, "karpathy/stories260K-GGUF") || !strings.Contains(out, "stories:260k") || !strings.Contains(out, "(Ollama, OLLAMA_MODELS)") {
		t.Fatalf("exit %d:\n%s", code, out)
	}

	// Every command taking a model takes the names, and they load the
	// same model as the path.
	type gen struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	}
	var want gen
	args := []string{"--prompt", "Once upon a time", "--max-tokens", "8", "--temperature", "0"}
	graftJSON(t, &want, append([]string{"generate", "--model", modelPath}, args...)...)
	for _, name := range []string{"karpathy/stories260K-GGUF", "stories:260k"} {
		var got gen
		graftJSON(t, &got, append([]string{"generate", "--model", name}, args...)...)
		if got.Text != want.Text {
			t.Errorf("%s: %q, want %q", name, got.Text, want.Text)
		}
		var info struct {
			Architecture string `json:"architecture"`
		}
		graftJSON(t, &info, "inspect", name)
		var toks struct {
			IDs []int32 `json:"ids"`
		}
		graftJSON(t, &toks, "tokenize", "--model", name, "--text", "Once")
		if info.Architecture != "llama" || len(toks.IDs) < 2 {
			t.Errorf("%s: inspect %+v, tokenize %v", name, info, toks.IDs)
		}
	}

	// A name found nowhere: one error listing where graft looked.
	_, errOut, code := graft(t, "generate", "--model", "Qwen/Qwen2.5-0.5B-Instruct")
	for _, want := range []string{`model "Qwen/Qwen2.5-0.5B-Instruct" not found`, filepath.Join(hub, "models--Qwen--Qwen2.5-0.5B-Instruct"),
		filepath.Join(ollama, "manifests", "registry.ollama.ai", "Qwen", "Qwen2.5-0.5B-Instruct", "latest")} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("exit %d, stderr %q; want it to mention %q", code, errOut, want)
		}
	}
}
