package peft

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBundleLoadsLikeDirectory saves an adapter as a directory and as a
// msgpack bundle: both open through OpenAdapterPath and give the same
// logits as the adapter they were saved from.
func TestBundleLoadsLikeDirectory(t *testing.T) {
	m := loadModel(t, storiesGGUF)
	mg := attach(t, m, LoraConfig{R: 4, LoraAlpha: 8, TargetConfig: TargetConfig{TargetModules: TargetNames("q_proj", "v_proj")}}, 3)
	want := logits(t, m, storyIDs)
	tmp := t.TempDir()
	dir, bundlePath := filepath.Join(tmp, "adapter"), filepath.Join(tmp, "adapter.msgpack")
	if err := mg.Save(dir, "a"); err != nil {
		t.Fatal(err)
	}
	files, err := ReadFiles(Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteBundle(bundlePath, files); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, bundlePath} {
		src, err := OpenAdapterPath(path)
		if err != nil {
			t.Fatal(err)
		}
		if src.Name() != path {
			t.Errorf("source name %q, want %q", src.Name(), path)
		}
		m2 := loadModel(t, storiesGGUF)
		if _, _, err := LoadAdapter(m2, src); err != nil {
			t.Fatal(err)
		}
		if got := logits(t, m2, storyIDs); !slices.Equal(got, want) {
			t.Errorf("%s: logits differ by %.3g", path, relDiff(got, want))
		}
	}
}

func TestOpenAdapterPathRejects(t *testing.T) {
	tmp := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		path, want string
	}{
		{filepath.Join(tmp, "missing"), "missing"},
		{write("x.gguf", "GGUF"), "llama.cpp's export format"},
		{write("x.msgpack", "not msgpack"), "x.msgpack"},
		{write("empty.msgpack", ""), "empty file"},
	} {
		_, err := OpenAdapterPath(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.path, err, tc.want)
		}
	}
}

func TestReadFilesRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files Files
		want  string
	}{
		{"no config", Files{WeightsFileName: {}}, "mem/adapter_config.json"},
		{"not json", Files{ConfigFileName: []byte("[")}, "mem/adapter_config.json"},
		{"no peft_type", Files{ConfigFileName: []byte(`{"r": 8}`)}, "peft_type is missing"},
		{"no weights", Files{ConfigFileName: []byte(`{"peft_type": "LORA"}`)}, "peft adapter mem"},
		{"pickle only", Files{ConfigFileName: []byte(`{"peft_type": "LORA"}`), "adapter_model.bin": {}}, "only adapter_model.bin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadFiles(InMemory("mem", tc.files))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func ExampleOpenAdapterPath() {
	dir, err := os.MkdirTemp("", "bundle-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	// A bundle carries an adapter's PEFT files; ReadFiles(Dir(path)) reads
	// them from a directory, and Adapter.Files() from a live adapter.
	path := filepath.Join(dir, "adapter.msgpack")
	files := Files{ConfigFileName: []byte(`{"peft_type": "LORA", "r": 8, "lora_alpha": 16}`), WeightsFileName: []byte("...")}
	if err := WriteBundle(path, files); err != nil {
		fmt.Println(err)
		return
	}
	src, err := OpenAdapterPath(path) // a directory works the same way
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, _ := src.ReadFile(ConfigFileName)
	fmt.Println(filepath.Base(src.Name()), string(cfg))
	// LoadAdapter(m, src) would now attach it to a model.

	// Output:
	// adapter.msgpack {"peft_type": "LORA", "r": 8, "lora_alpha": 16}
}
