package engine

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/graft-ml/graft/internal/parity"
)

// TestEveryMethodMatchesNative trains every registered method (and DoRA
// and QLoRA) for parity.Steps steps through Train, the page's request
// carrying a whole Spec, and checks that each step's loss and the eval
// losses equal train.Run's on the same Spec natively, bit for bit (under
// GOOS=js the native run is built with the portable kernels wasm runs; see
// nativeTraces). The adapter then exports and imports into another engine
// with the same logits.
func TestEveryMethodMatchesNative(t *testing.T) {
	native := nativeTraces(t)
	for _, c := range parity.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			want, ok := native[c.Name]
			if !ok {
				t.Fatalf("no native run of %s", c.Name)
			}
			e := loadEngine(t)
			if c.Quantize != "" {
				if err := e.Quantize(c.Quantize, false); err != nil {
					t.Fatal(err)
				}
			}
			spec := c.Spec
			res, err := e.Train(context.Background(), TrainRequest{Spec: &spec}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := parity.Trace{Losses: res.Losses, EvalBefore: deref(res.EvalBefore), EvalAfter: deref(res.EvalAfter), TrainableParams: res.Params}
			dLoss, dEval := parity.MaxDiff(got, want)
			t.Logf("%s: max |engine - native|: %g over %d step losses, %g over 2 eval losses", c.Name, dLoss, len(want.Losses), dEval)
			if !parity.Equal(got, want) {
				t.Fatalf("engine %+v\nnative %+v", got, want)
			}
			if res.Steps != parity.Steps || res.Spec == nil || res.Spec.LR <= 0 || res.PeftType != e.AdapterType() {
				t.Fatalf("result %+v", res)
			}

			const prompt = "Once upon a time"
			logits, err := e.Logits(prompt)
			if err != nil {
				t.Fatal(err)
			}
			bun, err := e.ExportBundle()
			if err != nil {
				t.Fatal(err)
			}
			e2 := loadEngine(t)
			if c.Quantize != "" {
				if err := e2.Quantize(c.Quantize, false); err != nil {
					t.Fatal(err)
				}
			}
			if pt, err := e2.ImportBundle(bun, "bundle"); err != nil || pt != res.PeftType {
				t.Fatalf("import: %q, %v", pt, err)
			}
			got2, err := e2.Logits(prompt)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got2, logits) {
				t.Fatal("the imported adapter's logits differ from the trained one's")
			}
		})
	}
}

// deref returns *p, or NaN for nil.
func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}
