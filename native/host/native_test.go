package host

import (
	"context"
	"slices"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
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
