package engine

import (
	"fmt"

	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
)

// MethodInfo describes a PEFT method the page can train: an entry of
// graft's method registry (peft.Methods).
type MethodInfo struct {
	Name     string `json:"name"`     // TrainRequest.Method
	PeftType string `json:"peftType"` // adapter_config.json's peft_type
	Summary  string `json:"summary"`
	// LR is the method's recommended learning rate, Train's default.
	LR        float64 `json:"lr"`
	Mergeable bool    `json:"mergeable"`
	// Defaults are the adapter_config.json fields a new adapter starts
	// from, beneath TrainRequest.Options.
	Defaults map[string]any `json:"defaults,omitempty"`
}

// Methods lists every method graft trains, sorted by name: the page's
// method picker.
func Methods() []MethodInfo {
	var out []MethodInfo
	for _, m := range peft.Methods() {
		out = append(out, MethodInfo{Name: m.Name, PeftType: m.PeftType, Summary: m.Summary, LR: m.LR,
			Mergeable: m.Mergeable, Defaults: m.Defaults})
	}
	return out
}

// Quantizations Quantize accepts.
const QuantizeNF4 = "nf4"

// Quantize turns the base into a QLoRA base, as graft train --quantize nf4
// does: every float (F32, F16, BF16) decoder projection becomes NF4
// (bitsandbytes' format, with doubleQuant its quantized block scales),
// about a seventh of its float32 size; projections a GGUF already holds
// quantized (Q4_K, Q8_0, ...) stay as stored, see model.QuantizeNF4.
// Adapters trained afterwards train over it. The attached adapter,
// if any, is dropped first. It cannot be undone short of loading the model
// again.
func (e *Engine) Quantize(kind string, doubleQuant bool) error {
	if kind != QuantizeNF4 {
		return fmt.Errorf("quantize %q: supported: %s", kind, QuantizeNF4)
	}
	if err := e.DropAdapter(); err != nil {
		return fmt.Errorf("quantize: %w", err)
	}
	if err := model.QuantizeNF4(e.m, doubleQuant); err != nil {
		return err
	}
	e.quantized = kind
	return nil
}
