package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/graft-ml/graft/core/formats/gguf"
	"github.com/graft-ml/graft/internal/randgguf"
	"github.com/graft-ml/graft/wasm/plugin/abi"
	"github.com/graft-ml/graft/wasm/plugin/guest"
)

// smolShape is SmolLM-135M's architecture (width, heads, vocabulary) with
// 2 of its 30 layers: per token, the plugin and native do the same work
// as on the whole model, layer for layer, in a file small enough to copy
// into a plugin quickly.
var smolShape = randgguf.Shape{
	Name: "smol135m-shape", Dim: 576, FFN: 1536, Layers: 2, Heads: 9, KVHeads: 3,
	Vocab: 49152, Ctx: 2048, NormEps: 1e-5, RopeTheta: 10000,
}

// smolGGUF writes a random-init model of smolShape with a synthetic
// SentencePiece vocabulary (byte tokens, then numbered word pieces) and
// returns its bytes.
func smolGGUF(b *testing.B) []byte {
	b.Helper()
	tokens := []string{"<unk>", "<s>", "</s>"}
	types := []int32{2, 3, 3}
	for c := range 256 {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", c))
		types = append(types, 6)
	}
	for i := 0; len(tokens) < smolShape.Vocab; i++ {
		tokens = append(tokens, fmt.Sprintf("\u2581%d", i))
		types = append(types, 1)
	}
	scores := make([]float32, len(tokens))
	for i := range scores {
		scores[i] = -float32(i)
	}
	kvs, tensors, err := randgguf.Llama(smolShape, 1, []gguf.KV{
		{Key: "tokenizer.ggml.model", Value: "llama"},
		{Key: "tokenizer.ggml.tokens", Value: tokens},
		{Key: "tokenizer.ggml.scores", Value: scores},
		{Key: "tokenizer.ggml.token_type", Value: types},
		{Key: "tokenizer.ggml.bos_token_id", Value: uint32(1)},
		{Key: "tokenizer.ggml.eos_token_id", Value: uint32(2)},
		{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(0)},
	})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "smol.gguf")
	if err := gguf.WriteFile(path, kvs, tensors); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkSmolShape evaluates (one 128-token sequence) and trains LoRA
// (3 steps of 2 x 64 tokens on q, k, v, o) on the SmolLM-135M shape,
// natively (package guest's code, all threads) and through the plugin
// with exact deadlines; tokens/s compare them. Loading is not timed.
// Run it with -benchtime 1x.
func BenchmarkSmolShape(b *testing.B) {
	ctx := context.Background()
	model := smolGGUF(b)
	seq := make([]int32, 129)
	for i := range seq {
		seq[i] = int32(259 + (i*7919)%(smolShape.Vocab-259))
	}
	eval := EvalRequest{Sequences: [][]int32{seq}}
	train := trainRequest(b, methods[0])
	train.Steps, train.Batch, train.EvalData = 3, 2, nil
	evalTokens := float64(len(seq) - 1)

	native := func(b *testing.B) *guest.Plugin {
		p := guest.New(nil, nil)
		nativeCall(b, p, abi.OpLoadModel, &abi.LoadModelArgs{Name: "smol.gguf", GGUF: model}, nil)
		return p
	}
	b.Run("eval-native", func(b *testing.B) {
		p := native(b)
		for b.Loop() {
			nativeCall(b, p, abi.OpEval, &eval, nil)
		}
		b.ReportMetric(evalTokens*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
	b.Run("eval-plugin-preemptive", func(b *testing.B) {
		in := newInstance(b, preemptiveHost(b))
		if _, err := in.LoadModel(ctx, "smol.gguf", model); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := in.Eval(ctx, eval); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(evalTokens*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
	b.Run("train", func(b *testing.B) {
		benchTrain(b, model, train, []benchHost{{"preemptive", preemptiveHost(b)}})
	})
}
