package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestExampleRuns trains a few steps through the same code path.
func TestExampleRuns(t *testing.T) {
	out := filepath.Join(t.TempDir(), "adapter")
	if err := run("../../models/stories260K/stories260K.gguf", "data", out, 5); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}
