package main

import (
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
)

// TestKeptQuantizedNote: --quantize nf4 on a GGUF whose projections are
// already Q8_0 says that they stay as stored and are trained on directly;
// on a float base it says nothing.
func TestKeptQuantizedNote(t *testing.T) {
	m, err := model.Load("../../../models/stories260K/stories260K-q8_0-v2.gguf", cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	if err := model.QuantizeNF4(m, false); err != nil {
		t.Fatal(err)
	}
	note := keptQuantizedNote(m)
	for _, want := range []string{"--quantize nf4", "30 of 35 projections are Q8_0", "trains on them as stored", "the other 5 are NF4 now"} {
		if !strings.Contains(note, want) {
			t.Errorf("note %q lacks %q", note, want)
		}
	}
	f, err := model.Load(modelPath, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Free()
	if err := model.QuantizeNF4(f, false); err != nil {
		t.Fatal(err)
	}
	if note := keptQuantizedNote(f); note != "" {
		t.Errorf("float base: note %q, want none", note)
	}
}
