package host

import (
	"context"
	"slices"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/internal/parity"
)

var probeTexts = []string{
	"Once upon a time, there was a little girl named Lily.",
	"Once upon a time, in the Mossy Hollow, there lived a little blue owl named Pip.",
}

// nativeModel loads stories260K natively, as graft's CLI does.
func nativeModel(t testing.TB) *model.Model {
	t.Helper()
	m, err := model.Load(modelPath, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

// nativeEval returns the summed loss and every position's logits of each
// text, computed natively.
func nativeEval(t testing.TB, m *model.Model, texts []string) (sumNLL float64, logits [][]float32) {
	t.Helper()
	for _, text := range texts {
		ids := m.Tokenizer.Encode(text, true)
		st, err := m.SequenceLoss(ids)
		if err != nil {
			t.Fatal(err)
		}
		sumNLL += st.SumNLL
		cache := m.NewCache(len(ids))
		l, err := m.Forward(cache, ids, true)
		m.FreeCache(cache)
		if err != nil {
			t.Fatal(err)
		}
		logits = append(logits, l)
	}
	return sumNLL, logits
}

// TestPluginMatchesNative: the same model gives the same logits, loss and
// greedy text inside the plugin as natively (bit for bit with portable
// native kernels; see sameFloats).
func TestPluginMatchesNative(t *testing.T) {
	ctx := context.Background()
	in := withModel(t, testHost(t))
	m := nativeModel(t)

	ev, err := in.Eval(ctx, EvalRequest{Texts: probeTexts, Logits: true})
	if err != nil {
		t.Fatal(err)
	}
	sum, logits := nativeEval(t, m, probeTexts)
	if !sameFloat(ev.SumNLL, sum) {
		t.Errorf("summed loss %v in the plugin, %v natively", ev.SumNLL, sum)
	}
	for i := range logits {
		if !sameFloats(ev.Logits[i], logits[i]) {
			t.Errorf("text %d: logits differ (plugin %v..., native %v...)", i, ev.Logits[i][:4], logits[i][:4])
		}
	}

	const prompt = "Once upon a time"
	gen, err := in.Generate(ctx, GenerateRequest{Prompt: prompt, MaxTokens: 40})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := m.Generate(m.Tokenizer.Encode(prompt, true), model.GenerateOptions{MaxTokens: 40})
	if err != nil {
		t.Fatal(err)
	}
	if want := m.Tokenizer.Decode(ids); gen.Text != want || !slices.Equal(gen.IDs, ids) {
		t.Errorf("greedy text %q in the plugin, %q natively", gen.Text, want)
	}
}

// TestExportedAdapterLoadsNatively: an adapter trained in the plugin and
// exported in PEFT's format gives the same logits natively.
func TestExportedAdapterLoadsNatively(t *testing.T) {
	ctx := context.Background()
	in := withModel(t, testHost(t))
	req := trainRequest(t, methods[0])
	req.Steps, req.EvalData = 4, nil
	if _, err := in.Train(ctx, req, nil); err != nil {
		t.Fatal(err)
	}
	files, err := in.ExportAdapter(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := in.Eval(ctx, EvalRequest{Texts: probeTexts, Logits: true})
	if err != nil {
		t.Fatal(err)
	}
	m := nativeModel(t)
	if _, _, err := peft.LoadAdapter(m, peft.InMemory("exported", files)); err != nil {
		t.Fatal(err)
	}
	sum, logits := nativeEval(t, m, probeTexts)
	if !sameFloat(ev.SumNLL, sum) || !sameFloats(ev.Logits[0], logits[0]) || !sameFloats(ev.Logits[1], logits[1]) {
		t.Fatalf("with the adapter: loss %v in the plugin, %v natively", ev.SumNLL, sum)
	}
}

// TestPluginMatchesNativeEveryMethod trains every registered method (and
// DoRA, and QLoRA on an NF4 base) for parity.Steps steps inside the
// plugin, the request carrying a whole train.Spec, and natively with
// train.Run on the same Spec: every step's loss and the eval losses agree
// (bit for bit with portable native kernels, -tags purego), and the
// adapter the plugin exports gives native graft the plugin's logits.
func TestPluginMatchesNativeEveryMethod(t *testing.T) {
	ctx := context.Background()
	h := testHost(t)
	gguf := readFile(t, modelPath)
	for _, c := range parity.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			in := newInstance(t, h)
			if _, err := in.LoadModelWith(ctx, LoadModelRequest{Name: "stories260K.gguf", GGUF: gguf, Quantize: c.Quantize}); err != nil {
				t.Fatal(err)
			}
			spec := c.Spec
			res, err := in.Train(ctx, TrainRequest{Spec: &spec}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := parity.Trace{Losses: res.Losses, TrainableParams: res.Adapter.Params}
			if res.EvalBefore != nil && res.EvalAfter != nil {
				got.EvalBefore, got.EvalAfter = *res.EvalBefore, *res.EvalAfter
			}
			m := nativeModel(t)
			want, err := c.Run(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			dLoss, dEval := parity.MaxDiff(got, want)
			t.Logf("%s: max |plugin - native|: %g over the step losses, %g over the eval losses (native kernels: %s)", c.Name, dLoss, dEval, cpu.Kernels())
			if nativeIsPortable && !parity.Equal(got, want) || !parity.Close(got, want) {
				t.Fatalf("plugin %+v\nnative %+v", got, want)
			}

			files, err := in.ExportAdapter(ctx, "default")
			if err != nil {
				t.Fatal(err)
			}
			ev, err := in.Eval(ctx, EvalRequest{Texts: probeTexts[:1], Logits: true})
			if err != nil {
				t.Fatal(err)
			}
			m2 := nativeModel(t)
			if err := c.Prepare(m2); err != nil {
				t.Fatal(err)
			}
			if _, _, err := peft.LoadAdapter(m2, peft.InMemory("exported", files)); err != nil {
				t.Fatal(err)
			}
			sum, logits := nativeEval(t, m2, probeTexts[:1])
			if !sameFloat(ev.SumNLL, sum) || !sameFloats(ev.Logits[0], logits[0]) {
				t.Fatalf("with the exported adapter: loss %v in the plugin, %v natively", ev.SumNLL, sum)
			}
		})
	}
}
