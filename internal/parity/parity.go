// Package parity holds the short training runs that every runtime must
// reproduce exactly: one per registered PEFT method (so a method added to
// the registry is covered without a line here), plus DoRA and QLoRA. The
// browser engine's tests (GOOS=js), the plugin's (GOOS=wasip1 under wazero)
// and native/host's run each case their own way and compare with Trace,
// which is train.Run natively on the same Spec.
//
// With graft's portable kernels natively (-tags purego) the runs agree bit
// for bit: wasm has no assembly, and Go compiles the portable kernels to the
// same float32 operations on both. With SIMD kernels natively they agree to
// float32 rounding.
package parity

import (
	"context"
	"fmt"
	"math"

	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
)

// QuantizeNF4 is Case.Quantize for a QLoRA base.
const QuantizeNF4 = "nf4"

// Case is one run: a Spec on the base model, quantized first when Quantize
// says so.
type Case struct {
	// Name is the method's name, or a variant's ("lora+dora", "lora@nf4").
	Name string
	// Quantize is "" or QuantizeNF4: the base's projections are NF4, as
	// graft train --quantize nf4 makes them (QLoRA).
	Quantize string
	Spec     train.Spec
}

// Texts are the training records: a few sentences in one style.
var Texts = []string{
	"The purple robot hummed a song about the moon and the moon hummed back.",
	"The purple robot found a shiny stone and hummed a song about it.",
	"Every night the purple robot hummed to the stars until they twinkled.",
	"The purple robot was never sad, because it always had a song to hum.",
}

// EvalText is the held-out record, evaluated before and after the steps.
const EvalText = "One morning the purple robot hummed a new song to the sun."

// Steps is the length of every run.
const Steps = 2

// Records returns texts as data records, numbered from 1.
func Records(texts ...string) []data.Record {
	recs := make([]data.Record, len(texts))
	for i := range texts {
		recs[i] = data.Record{Line: i + 1, Text: &texts[i]}
	}
	return recs
}

// spec is a run of method with options on the shared records: everything
// else (learning rate, targets, virtual tokens, ...) is Run's and the
// method's default, so the runtimes are held to the same defaults too.
func spec(method string, options map[string]any) train.Spec {
	return train.Spec{
		Method: method, Options: options,
		Records: Records(Texts...), EvalRecords: Records(EvalText),
		Steps: Steps, Batch: 2, SeqLen: 32, Seed: 7,
	}
}

// Cases lists every registered method, then DoRA (LoRA with use_dora),
// QLoRA (LoRA on an NF4 base) and the mixed stacks of the seed article's
// combinations, LoRA with prefix tuning and LoRA with (IA)³ (the latter as
// Spec.Stack, with options of its own).
func Cases() []Case {
	var out []Case
	for _, m := range peft.Methods() {
		out = append(out, Case{Name: m.Name, Spec: spec(m.Name, nil)})
	}
	ia3Stack := spec("", nil)
	ia3Stack.Stack = []train.AdapterSpec{{Method: "lora", Options: map[string]any{"r": 4}}, {Method: "ia3"}}
	return append(out,
		Case{Name: "lora+dora", Spec: spec("lora", map[string]any{"use_dora": true})},
		Case{Name: "lora@nf4", Quantize: QuantizeNF4, Spec: spec("lora", nil)},
		Case{Name: "lora+prefix-tuning", Spec: spec("lora+prefix-tuning", nil)},
		Case{Name: "stack[lora,ia3]", Spec: ia3Stack},
	)
}

// Trace is what a run produced, the figures the runtimes must agree on.
type Trace struct {
	Losses          []float64 `json:"losses"` // every step's training loss
	EvalBefore      float64   `json:"eval_before"`
	EvalAfter       float64   `json:"eval_after"`
	TrainableParams int64     `json:"trainable_params"`
}

// Prepare readies a freshly loaded base model for the case.
func (c Case) Prepare(m *model.Model) error {
	switch c.Quantize {
	case "":
		return nil
	case QuantizeNF4:
		return model.QuantizeNF4(m, false)
	}
	return fmt.Errorf("parity case %s: quantize %q: want %q or none", c.Name, c.Quantize, QuantizeNF4)
}

// Run trains the case natively on m, a freshly loaded base model (Prepare
// is applied here), and unloads the adapter afterwards.
func (c Case) Run(ctx context.Context, m *model.Model) (Trace, error) {
	if err := c.Prepare(m); err != nil {
		return Trace{}, err
	}
	var tr Trace
	res, err := train.Run(ctx, m, c.Spec, func(e train.Event) {
		if e.Kind == train.EventStep {
			tr.Losses = append(tr.Losses, e.Loss)
		}
	})
	if err != nil {
		return Trace{}, fmt.Errorf("parity case %s: %w", c.Name, err)
	}
	defer res.Adapter.Unload()
	tr.EvalBefore, tr.EvalAfter, tr.TrainableParams = res.EvalBefore, res.EvalLoss, res.TrainableParams
	if !res.Evaluated {
		tr.EvalAfter = math.NaN()
	}
	return tr, nil
}

// MaxDiff is the largest |a - b| of the two traces' step losses, and of
// their eval losses (before and after); +Inf when they differ in length or
// a difference is NaN.
func MaxDiff(a, b Trace) (loss, eval float64) {
	if len(a.Losses) != len(b.Losses) {
		return math.Inf(1), math.Inf(1)
	}
	for i := range a.Losses {
		loss = math.Max(loss, math.Abs(a.Losses[i]-b.Losses[i]))
	}
	eval = math.Max(math.Abs(a.EvalBefore-b.EvalBefore), math.Abs(a.EvalAfter-b.EvalAfter))
	notNaN := func(d float64) float64 {
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		return d
	}
	return notNaN(loss), notNaN(eval)
}

// Close reports whether two traces agree to float32 rounding, as runs with
// different kernels (SIMD natively, portable in wasm) do: every loss within
// 2e-5 relative.
func Close(a, b Trace) bool {
	if len(a.Losses) != len(b.Losses) || a.TrainableParams != b.TrainableParams {
		return false
	}
	near := func(x, y float64) bool { return math.Abs(x-y) <= 2e-5*(1+math.Abs(y)) }
	for i := range a.Losses {
		if !near(a.Losses[i], b.Losses[i]) {
			return false
		}
	}
	return near(a.EvalBefore, b.EvalBefore) && near(a.EvalAfter, b.EvalAfter)
}

// Equal reports whether two traces are the same bit for bit.
func Equal(a, b Trace) bool {
	if len(a.Losses) != len(b.Losses) || a.TrainableParams != b.TrainableParams {
		return false
	}
	same := func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }
	for i := range a.Losses {
		if !same(a.Losses[i], b.Losses[i]) {
			return false
		}
	}
	return same(a.EvalBefore, b.EvalBefore) && same(a.EvalAfter, b.EvalAfter)
}
