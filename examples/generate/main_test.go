package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	var out strings.Builder
	if err := generate(&out, "../../models/stories260K/stories260K.gguf", "Once upon a time"); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "Once upon a time, there was a little girl named Lily.") {
		t.Fatalf("generated %q", got)
	}
}

// TestGenerateMissingModel runs the example where the model is not: an
// error naming the file, not a panic.
func TestGenerateMissingModel(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "models/stories260K/stories260K.gguf")
	err := generate(new(strings.Builder), missing, "Once upon a time")
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("err = %v, want an error naming %s", err, missing)
	}
}
