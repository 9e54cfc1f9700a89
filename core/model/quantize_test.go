package model_test

// QLoRA tests: NF4 bases built by model.QuantizeNF4, and LoRA training on
// NF4, Q8_0 and Q4_0 bases. They live in the external test package because
// they attach adapters (core/peft imports core/model) and train
// (core/train).

import (
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/tensor"
	"github.com/graft-ml/graft/core/train"
)

const (
	qloraF32Model = "../../models/stories260K/stories260K.gguf"
	qloraQ8Model  = "../../models/stories260K/stories260K-q8_0-v2.gguf"
	qloraTrain    = "../../examples/lora/data/train.jsonl"
	qloraEval     = "../../examples/lora/data/eval.jsonl"
)

// qloraSentences are held-out text for comparing losses.
var qloraSentences = []string{
	"Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
	"Tom had a big red ball. He wanted to share it with his friend, but his friend was sad.",
	"The cat sat on the mat and looked at the bird. The bird sang a happy song.",
}

func qloraLoad(t *testing.T, path string) *model.Model {
	t.Helper()
	m, err := model.Load(path, cpu.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Free)
	return m
}

// qloraNF4 loads the F32 model and quantizes its projections to NF4.
func qloraNF4(t *testing.T, doubleQuant bool) *model.Model {
	t.Helper()
	m := qloraLoad(t, qloraF32Model)
	if err := model.QuantizeNF4(m, doubleQuant); err != nil {
		t.Fatal(err)
	}
	return m
}

func qloraRead(t *testing.T, b backend.Backend, buf backend.Buffer) []float32 {
	t.Helper()
	out := make([]float32, buf.Shape().Numel())
	if err := b.Read(buf, 0, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// qloraReplace swaps a projection's weight for the given host tensor.
func qloraReplace(t *testing.T, m *model.Model, lin *model.Linear, tt *tensor.Tensor) {
	t.Helper()
	buf, err := m.Backend.Load(tt)
	if err != nil {
		t.Fatal(err)
	}
	m.Backend.Free(lin.Weight)
	lin.Weight = buf
}

// qloraLoss is the mean next-token loss over qloraSentences.
func qloraLoss(t *testing.T, m *model.Model) float64 {
	t.Helper()
	var st model.LossStats
	for _, s := range qloraSentences {
		ids := m.Tokenizer.Encode(s, true)
		l, err := m.SequenceLoss(ids)
		if err != nil {
			t.Fatal(err)
		}
		st.Add(l)
	}
	return st.Loss()
}

// qloraLinearBytes is the memory the decoder projections hold.
func qloraLinearBytes(m *model.Model) int64 {
	c := m.Backend.(*cpu.Backend)
	var bufs []backend.Buffer
	for _, l := range m.Linears() {
		bufs = append(bufs, l.Weight)
	}
	return c.ResidentBytes(bufs...)
}

// qloraAllBytes is the memory all base weights hold.
func qloraAllBytes(m *model.Model) int64 {
	c := m.Backend.(*cpu.Backend)
	bufs := []backend.Buffer{m.Embed, m.OutNorm}
	if !m.Config.TiedOutput {
		bufs = append(bufs, m.Output.Weight)
	}
	for _, l := range m.Layers {
		bufs = append(bufs, l.AttnNorm, l.FFNNorm)
	}
	return c.ResidentBytes(bufs...) + qloraLinearBytes(m)
}

func TestQuantizeNF4Model(t *testing.T) {
	ref := qloraLoad(t, qloraF32Model)
	refLoss := qloraLoss(t, ref)
	refLinear, refAll := qloraLinearBytes(ref), qloraAllBytes(ref)
	for _, dq := range []bool{false, true} {
		t.Run(fmt.Sprintf("double=%v", dq), func(t *testing.T) {
			m := qloraLoad(t, qloraF32Model)
			embed, head := m.Embed, m.Output.Weight
			if err := model.QuantizeNF4(m, dq); err != nil {
				t.Fatal(err)
			}
			n := len(m.Linears())
			if m.WeightDTypes["NF4"] != n || m.WeightDTypes["F32"] == 0 {
				t.Errorf("WeightDTypes = %v, want %d NF4 and the rest F32", m.WeightDTypes, n)
			}
			for _, l := range m.Linears() {
				if l.Weight.DType() != tensor.NF4 || !l.Weight.Shape().Equal(tensor.Shape{l.Out, l.In}) {
					t.Errorf("%s: %v %v after quantization", l.Name, l.Weight.DType(), l.Weight.Shape())
				}
				if l.SourceDType != tensor.F32 {
					t.Errorf("%s: SourceDType %v, want the file's F32", l.Name, l.SourceDType)
				}
			}
			if m.Embed != embed || m.Output.Weight != head || m.Embed.DType() != tensor.F32 {
				t.Error("the embedding or the output head changed")
			}
			// Quantizing again leaves the NF4 weights alone.
			before := qloraRead(t, m.Backend, m.Layers[0].Q.Weight)
			w := m.Layers[0].Q.Weight
			if err := model.QuantizeNF4(m, !dq); err != nil || m.Layers[0].Q.Weight != w || m.WeightDTypes["NF4"] != n {
				t.Errorf("second QuantizeNF4: %v, weight replaced %v, dtypes %v", err, m.Layers[0].Q.Weight != w, m.WeightDTypes)
			}
			if after := qloraRead(t, m.Backend, w); !slicesEqualBits(before, after) {
				t.Error("second QuantizeNF4 changed an NF4 weight")
			}

			// The projection weights are what bitsandbytes would make of
			// the F32 ones.
			for _, pair := range [][2]*model.Linear{{ref.Layers[1].Down, m.Layers[1].Down}, {ref.Layers[0].K, m.Layers[0].K}} {
				want, err := tensor.QuantizeNF4(qloraRead(t, ref.Backend, pair[0].Weight), dq).Dequantize()
				if err != nil {
					t.Fatal(err)
				}
				if !slicesEqualBits(qloraRead(t, m.Backend, pair[1].Weight), want) {
					t.Errorf("%s: loaded NF4 weight does not decode to QuantizeNF4 of the F32 weight", pair[1].Name)
				}
			}

			loss := qloraLoss(t, m)
			t.Logf("loss per token: F32 %.4f, NF4 %.4f (%+.4f)", refLoss, loss, loss-refLoss)
			// 4-bit weights cost this 64-wide model about 0.11 nats per
			// token (Q8_0 costs it under 0.01); a broken scale or code
			// table costs whole nats.
			if d := loss - refLoss; math.Abs(d) > 0.15 {
				t.Errorf("NF4 loss %.4f vs F32 %.4f: differ by %.4f nats per token, want at most 0.15", loss, refLoss, d)
			}

			out, err := m.Generate([]int32{m.Tokenizer.BOS()}, model.GenerateOptions{MaxTokens: 80})
			if err != nil {
				t.Fatal(err)
			}
			text := m.Tokenizer.Decode(out)
			t.Logf("NF4 greedy: %q", text)
			if !sensibleText(text) {
				t.Errorf("NF4 greedy text %q does not look like English prose", text)
			}

			lin, all := qloraLinearBytes(m), qloraAllBytes(m)
			t.Logf("projection weights: F32 %d bytes, NF4 %d bytes (%.3f); all base weights: F32 %d, NF4 %d (%.3f)",
				refLinear, lin, float64(lin)/float64(refLinear), refAll, all, float64(all)/float64(refAll))
			// 4 bits plus a float32 per 64 (or a byte per 64 and a
			// float32 per 16384) against 32 bits.
			limit := (0.5 + 4.0/64) / 4
			if dq {
				limit = (0.5 + 1.0/64 + 4.0/16384) / 4
			}
			if r := float64(lin) / float64(refLinear); r > limit*1.01 {
				t.Errorf("NF4 projections take %.4f of their F32 size, want <= %.4f", r, limit)
			}
		})
	}
}

// sensibleText reports whether s is mostly lower-case words of letters,
// with a few common words among them: what a story model writes.
func sensibleText(s string) bool {
	words := strings.Fields(s)
	if len(words) < 20 {
		return false
	}
	good, common := 0, 0
	for _, w := range words {
		w = strings.TrimFunc(w, func(r rune) bool { return !unicode.IsLetter(r) })
		if w != "" && strings.IndexFunc(w, func(r rune) bool { return !unicode.IsLetter(r) && r != '\'' }) < 0 {
			good++
		}
		switch strings.ToLower(w) {
		case "the", "a", "and", "was", "to", "he", "she", "it", "they":
			common++
		}
	}
	return good >= len(words)*9/10 && common >= 3
}

func slicesEqualBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// qloraAdapter attaches a LoRA adapter with non-zero B (so it changes the
// output) to every projection.
func qloraAdapter(t *testing.T, m *model.Model, seed uint64) (*peft.Manager, []model.Param) {
	t.Helper()
	mg := peft.AttachLoRA(m)
	cfg := peft.LoraConfig{
		R: 4, LoraAlpha: 8, InitLoraWeights: peft.InitRandom,
		TargetConfig: peft.TargetConfig{TargetModules: peft.TargetNames("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")},
	}
	if err := mg.AddAdapter("qlora", cfg, rand.New(rand.NewPCG(seed, 1))); err != nil {
		t.Fatal(err)
	}
	params, err := mg.Params("qlora")
	if err != nil {
		t.Fatal(err)
	}
	return mg, params
}

// qloraBatch is two rows of random tokens with a few positions masked.
func qloraBatch(vocab int, seed uint64) model.TokenBatch {
	const B, T = 2, 16
	rng := rand.New(rand.NewPCG(seed, 2))
	tb := model.TokenBatch{B: B, T: T, IDs: make([]int32, B*T), Targets: make([]int32, B*T), Weights: make([]float32, B*T)}
	for i := range tb.IDs {
		tb.IDs[i] = int32(3 + rng.IntN(vocab-3))
		tb.Targets[i] = int32(3 + rng.IntN(vocab-3))
		tb.Weights[i] = 1
	}
	tb.Weights[0], tb.Weights[T] = 0, 0
	return tb
}

// TestQLoRAMatchesDequantizedF32 checks that LoRA on an NF4 base computes
// exactly what LoRA on an F32 base holding the dequantized weights does:
// logits, loss and adapter gradients. The NF4 matmul decodes tiles into
// the same float32 values the F32 kernel reads, in the same order.
func TestQLoRAMatchesDequantizedF32(t *testing.T) {
	for _, dq := range []bool{false, true} {
		t.Run(fmt.Sprintf("double=%v", dq), func(t *testing.T) {
			q := qloraNF4(t, dq)
			f := qloraLoad(t, qloraF32Model)
			for i, l := range f.Linears() {
				vals := qloraRead(t, q.Backend, q.Linears()[i].Weight)
				tt, err := tensor.FromFloat32(l.Name, tensor.Shape{l.Out, l.In}, vals)
				if err != nil {
					t.Fatal(err)
				}
				qloraReplace(t, f, l, tt)
			}
			_, qp := qloraAdapter(t, q, 7)
			_, fp := qloraAdapter(t, f, 7)

			ids := q.Tokenizer.Encode(qloraSentences[0], true)
			ql, err := q.Forward(q.NewCache(len(ids)), ids, true)
			if err != nil {
				t.Fatal(err)
			}
			fl, err := f.Forward(f.NewCache(len(ids)), ids, true)
			if err != nil {
				t.Fatal(err)
			}
			var worst float64
			for i := range ql {
				worst = max(worst, math.Abs(float64(ql[i]-fl[i])))
			}
			t.Logf("max |logit difference| over %d logits: %g", len(ql), worst)
			if worst > 1e-5 {
				t.Errorf("NF4+LoRA logits differ from F32(dequantized)+LoRA by up to %g", worst)
			}

			tb := qloraBatch(q.Config.Vocab, 3)
			lq, err := q.LossAndGrad(tb, 1)
			if err != nil {
				t.Fatal(err)
			}
			lf, err := f.LossAndGrad(tb, 1)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(lq-lf) > 1e-6*math.Abs(lf) {
				t.Errorf("loss %.9g on NF4, %.9g on F32(dequantized)", lq, lf)
			}
			for i := range qp {
				gq, gf := qloraRead(t, q.Backend, qp[i].Grad), qloraRead(t, f.Backend, fp[i].Grad)
				for j := range gq {
					if d := math.Abs(float64(gq[j] - gf[j])); d > 1e-5*math.Abs(float64(gf[j]))+1e-7 {
						t.Fatalf("%s grad[%d]: %g on NF4, %g on F32(dequantized)", qp[i].Name, j, gq[j], gf[j])
					}
				}
			}
		})
	}
}

// TestQLoRAGradientsMatchFiniteDifferences checks LossAndGrad's LoRA
// gradients on an NF4 base against central differences of BatchLoss, so
// the input gradients through the quantized weights (the non-transposed
// NF4 matmul) are right. The step and tolerance reasoning is that of the
// F32 check in gradcheck_test.go: float32 rounding of a loss of about 100
// nats limits the differences to about 1e-2 of an entry.
func TestQLoRAGradientsMatchFiniteDifferences(t *testing.T) {
	const samples, rtol, atol = 24, 2e-2, 1e-2
	m := qloraNF4(t, true)
	b := m.Backend
	mg, params := qloraAdapter(t, m, 11)
	if err := mg.ZeroGrad(); err != nil {
		t.Fatal(err)
	}
	tb := qloraBatch(m.Config.Vocab, 5)
	if _, err := m.LossAndGrad(tb, 1); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(13, 14))
	bad := 0
	for s := range samples {
		p := params[(s*37)%len(params)]
		grad := qloraRead(t, b, p.Grad)
		idx := rng.IntN(len(grad))
		analytic := float64(grad[idx])
		orig := make([]float32, 1)
		if err := b.Read(p.Value, idx, orig); err != nil {
			t.Fatal(err)
		}
		lossAt := func(v float32) float64 {
			if err := b.Write(p.Value, idx, []float32{v}); err != nil {
				t.Fatal(err)
			}
			l, err := m.BatchLoss(tb)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		h := min(1e-2, max(1e-3, 0.1/math.Abs(analytic)))
		up, down := float32(float64(orig[0])+h), float32(float64(orig[0])-h)
		numeric := (lossAt(up) - lossAt(down)) / (float64(up) - float64(down))
		lossAt(orig[0])
		if d := math.Abs(numeric - analytic); d > rtol*math.Abs(numeric)+atol {
			bad++
			t.Errorf("%s[%d]: LossAndGrad %.6g, finite difference %.6g", p.Name, idx, analytic, numeric)
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d sampled gradients disagree", bad, samples)
	}
}

// qloraQ4_0 re-encodes the projections of an F32 model whose rows are
// whole 32-element blocks as Q4_0, as a Q4_0 GGUF file would hold them, and
// returns how many it converted.
func qloraQ4_0(t *testing.T, m *model.Model) int {
	t.Helper()
	n := 0
	for _, l := range m.Linears() {
		if l.In%32 != 0 {
			continue
		}
		vals := qloraRead(t, m.Backend, l.Weight)
		data := make([]byte, len(vals)/32*18)
		if err := tensor.Encode(tensor.Q4_0, vals, data); err != nil {
			t.Fatal(err)
		}
		tt, err := tensor.New(l.Name, tensor.Q4_0, tensor.Shape{l.Out, l.In}, data)
		if err != nil {
			t.Fatal(err)
		}
		qloraReplace(t, m, l, tt)
		n++
	}
	return n
}

// TestQLoRATrainingLowersEvalLoss fine-tunes LoRA on quantized bases: NF4
// made by QuantizeNF4, the Q8_0 GGUF file, and Q4_0 projections. Each run
// must lower the held-out loss of the demo data and leave the base
// weights bit for bit as they were.
func TestQLoRATrainingLowersEvalLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("training runs are slow in -short mode")
	}
	bases := []struct {
		name  string
		build func(t *testing.T) *model.Model
		dtype tensor.DType
	}{
		{"nf4", func(t *testing.T) *model.Model { return qloraNF4(t, false) }, tensor.NF4},
		{"nf4-double", func(t *testing.T) *model.Model { return qloraNF4(t, true) }, tensor.NF4},
		{"q8_0-gguf", func(t *testing.T) *model.Model { return qloraLoad(t, qloraQ8Model) }, tensor.Q8_0},
		{"q4_0", func(t *testing.T) *model.Model {
			m := qloraLoad(t, qloraF32Model)
			if qloraQ4_0(t, m) == 0 {
				t.Fatal("no projection could be stored as Q4_0")
			}
			return m
		}, tensor.Q4_0},
	}
	for _, base := range bases {
		t.Run(base.name, func(t *testing.T) {
			m := base.build(t)
			quantized := 0
			for _, l := range m.Linears() {
				if l.Weight.DType() == base.dtype {
					quantized++
				}
			}
			if quantized == 0 {
				t.Fatalf("no projection is %v", base.dtype)
			}
			frozen := make([][]float32, 0)
			for _, l := range m.Linears() {
				frozen = append(frozen, qloraRead(t, m.Backend, l.Weight))
			}
			before, after := qloraFineTune(t, m)
			t.Logf("%d of %d projections %v: eval loss %.4f -> %.4f", quantized, len(m.Linears()), base.dtype, before, after)
			if !(after < before-0.2) {
				t.Errorf("eval loss %.4f -> %.4f, want a drop of at least 0.2", before, after)
			}
			for i, l := range m.Linears() {
				if !slicesEqualBits(qloraRead(t, m.Backend, l.Weight), frozen[i]) {
					t.Errorf("training changed the frozen base weight %s", l.Name)
				}
			}
		})
	}
}

// qloraFineTune trains a rank-8 LoRA on the demo stories and returns the
// held-out loss per token before and after.
func qloraFineTune(t *testing.T, m *model.Model) (before, after float64) {
	t.Helper()
	opt := data.DefaultOptions()
	const seqLen = 64
	opt.TextSeqLen = seqLen + 1
	trainEx, err := data.Load(qloraTrain, m.Tokenizer, opt)
	if err != nil {
		t.Fatal(err)
	}
	evalEx, err := data.Load(qloraEval, m.Tokenizer, opt)
	if err != nil {
		t.Fatal(err)
	}
	pad := m.Tokenizer.EOS()
	loader, err := data.NewLoader(trainEx, data.LoaderOptions{Batch: 4, SeqLen: seqLen, Pack: true, Shuffle: true, PadID: pad})
	if err != nil {
		t.Fatal(err)
	}
	el, err := data.NewLoader(evalEx, data.LoaderOptions{Batch: 8, SeqLen: seqLen, Pack: true, PadID: pad})
	if err != nil {
		t.Fatal(err)
	}
	mg := peft.AttachLoRA(m)
	cfg := peft.LoraConfig{R: 8, LoraAlpha: 16, TargetConfig: peft.TargetConfig{TargetModules: peft.TargetAllLinear()}}
	if err := mg.AddAdapter("qlora", cfg, rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	params, err := mg.Params("qlora")
	if err != nil {
		t.Fatal(err)
	}
	obj := &train.LM{Model: m, Trainable: params, Mode: mg.SetTraining}
	tc := train.DefaultConfig()
	tc.Steps, tc.LR, tc.Warmup, tc.Seed = 20, 1e-2, 2, 3
	tr, err := train.New(obj, m.Backend, train.LoaderSource(loader), train.EvalBatches(el), tc)
	if err != nil {
		t.Fatal(err)
	}
	if before, err = tr.Evaluate(); err != nil {
		t.Fatal(err)
	}
	res, err := tr.Fit(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Evaluated {
		t.Fatal("the run did not evaluate")
	}
	return before, res.EvalLoss
}

func TestQuantizeNF4Errors(t *testing.T) {
	m := qloraLoad(t, qloraF32Model)
	l := m.Layers[0].Up
	l.Out++ // the weight no longer has the shape the layer claims
	err := model.QuantizeNF4(m, false)
	l.Out--
	if err == nil || !strings.Contains(err.Error(), l.Name) {
		t.Fatalf("QuantizeNF4 with a mis-shaped weight: %v, want an error naming %s", err, l.Name)
	}
	// Layers before the bad one were converted; the model still runs and
	// its counts match its weights.
	nf4 := 0
	for _, l := range m.Linears() {
		if l.Weight.DType() == tensor.NF4 {
			nf4++
		}
	}
	if nf4 == 0 || m.WeightDTypes["NF4"] != nf4 {
		t.Errorf("%d NF4 weights, WeightDTypes %v", nf4, m.WeightDTypes)
	}
	if err := model.QuantizeNF4(m, false); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Generate([]int32{m.Tokenizer.BOS()}, model.GenerateOptions{MaxTokens: 5}); err != nil {
		t.Fatal(err)
	}
}

// TestQuantizeNF4KeepsQuantizedBase: on a base whose projections are
// already block-quantized (the Q8_0 GGUF file, with some projections
// re-encoded as Q4_0) QuantizeNF4 leaves them bit for bit as they are,
// converts only the float ones, and QuantizedLinears names what stayed.
func TestQuantizeNF4KeepsQuantizedBase(t *testing.T) {
	m := qloraLoad(t, qloraQ8Model)
	// The file's ffn_down rows (172) split Q8_0 blocks, so those load as
	// F32; every other projection is Q8_0.
	if got := model.QuantizedLinears(m); got["Q8_0"] != len(m.Linears())-len(m.Layers) {
		t.Fatalf("QuantizedLinears of the Q8_0 file = %v, want %d Q8_0", got, len(m.Linears())-len(m.Layers))
	}
	m.Layers[0].Q.Weight = qloraQ4_0Weight(t, m, m.Layers[0].Q)
	want := map[string]int{}
	before := map[*model.Linear][]float32{}
	kinds := map[*model.Linear]tensor.DType{}
	for _, l := range m.Linears() {
		before[l], kinds[l] = qloraRead(t, m.Backend, l.Weight), l.Weight.DType()
		if kinds[l].Quantized() {
			want[kinds[l].String()]++
		}
	}
	if err := model.QuantizeNF4(m, false); err != nil {
		t.Fatal(err)
	}
	nf4 := 0
	for _, l := range m.Linears() {
		switch {
		case !kinds[l].Quantized():
			if l.Weight.DType() != tensor.NF4 {
				t.Errorf("%s: %v after QuantizeNF4, want NF4", l.Name, l.Weight.DType())
			}
			nf4++
		case l.Weight.DType() != kinds[l]:
			t.Errorf("%s: %v after QuantizeNF4, want %v as loaded", l.Name, l.Weight.DType(), kinds[l])
		case !slicesEqualBits(qloraRead(t, m.Backend, l.Weight), before[l]):
			t.Errorf("%s: QuantizeNF4 changed an already quantized weight", l.Name)
		}
	}
	if got := model.QuantizedLinears(m); !maps.Equal(got, want) || want["Q4_0"] != 1 || nf4 == 0 {
		t.Errorf("QuantizedLinears after QuantizeNF4 = %v, want %v (and %d NF4)", got, want, nf4)
	}
}

// qloraQ4_0Weight returns l's weight re-encoded as Q4_0, loaded.
func qloraQ4_0Weight(t *testing.T, m *model.Model, l *model.Linear) backend.Buffer {
	t.Helper()
	vals := qloraRead(t, m.Backend, l.Weight)
	data := make([]byte, len(vals)/32*18)
	if err := tensor.Encode(tensor.Q4_0, vals, data); err != nil {
		t.Fatal(err)
	}
	tt, err := tensor.New(l.Name, tensor.Q4_0, tensor.Shape{l.Out, l.In}, data)
	if err != nil {
		t.Fatal(err)
	}
	buf, err := m.Backend.Load(tt)
	if err != nil {
		t.Fatal(err)
	}
	m.Backend.Free(l.Weight)
	return buf
}
