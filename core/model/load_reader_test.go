package model

import (
	"bytes"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
)

// TestLoadGGUFReaderMatchesFile loads the same GGUF from memory and from its
// file and expects the same model.
func TestLoadGGUFReaderMatchesFile(t *testing.T) {
	raw, err := os.ReadFile(bundledModel)
	if err != nil {
		t.Fatal(err)
	}
	fromFile := loadModel(t, bundledModel)
	fromBytes, err := LoadGGUFReader(bytes.NewReader(raw), int64(len(raw)), "stories260K.gguf", cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer fromBytes.Free()
	if !reflect.DeepEqual(fromBytes.Config, fromFile.Config) {
		t.Fatalf("config %+v, want %+v", fromBytes.Config, fromFile.Config)
	}
	if fromBytes.SourcePath != "stories260K.gguf" || fromBytes.Tokenizer == nil {
		t.Fatalf("source %q, tokenizer %v", fromBytes.SourcePath, fromBytes.Tokenizer)
	}
	if a, b := greedy(t, fromBytes, 12), greedy(t, fromFile, 12); !slices.Equal(a, b) {
		t.Fatalf("greedy tokens %v, want %v", a, b)
	}
}

func TestLoadGGUFReaderRejectsTruncated(t *testing.T) {
	raw, err := os.ReadFile(bundledModel)
	if err != nil {
		t.Fatal(err)
	}
	cut := raw[:len(raw)/2]
	_, err = LoadGGUFReader(bytes.NewReader(cut), int64(len(cut)), "half.gguf", cpu.New())
	if err == nil || !strings.Contains(err.Error(), "half.gguf") {
		t.Fatalf("err = %v, want an error naming half.gguf", err)
	}
}
