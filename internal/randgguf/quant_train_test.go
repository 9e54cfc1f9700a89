package randgguf_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/tensor"
	"github.com/graft-ml/graft/core/train"
	"github.com/graft-ml/graft/internal/randgguf"
)

// TestQuantTypesTrain trains for 20 steps through train.Run on a random
// SmolLM2-shaped model (hidden 256, FFN 512) whose matrices are all of one
// ggml type: LoRA on all seven projections for every type, and every
// registered PEFT method on Q4_K and Q6_K (the types of Q4_K_M files; every
// method reaches the base through the same MatMul, so the other types
// add nothing per method). The frozen base stays quantized (the backward
// pass reaches the input through the same block-wise decode), the loss
// falls, and the base weights are bit for bit what they were.
func TestQuantTypesTrain(t *testing.T) {
	if testing.Short() {
		t.Skip("training runs are slow in -short mode")
	}
	const vocab = 300
	var examples []data.Example
	for s := range 8 {
		e := data.Example{IDs: make([]int32, 33), Loss: make([]bool, 33)}
		for i := range e.IDs {
			e.IDs[i] = int32((s*37 + i*i*11 + i*5) % vocab)
			e.Loss[i] = i > 0
		}
		examples = append(examples, e)
	}
	type method struct {
		name    string
		options map[string]any
		lr      float64 // 0: the method's own
	}
	methods := []method{
		{"lora", map[string]any{"r": 8, "target_modules": []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}}, 1e-2},
	}
	for _, m := range peft.Methods() {
		methods = append(methods, method{m.Name, nil, 0})
	}
	for _, dt := range tensor.QuantTypes() {
		rm, err := randgguf.NewFamilySized(randgguf.SmolLM2, vocab, 9, nil, 256, 512)
		if err != nil {
			t.Fatal(err)
		}
		if err := rm.Quantize(dt); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), dt.String()+".gguf")
		if err := rm.WriteGGUF(path); err != nil {
			t.Fatal(err)
		}
		for _, method := range methods {
			if method.options == nil && dt != tensor.Q4_K && dt != tensor.Q6_K {
				continue
			}
			name := method.name
			if method.options != nil {
				name += "-all-linear"
			}
			t.Run(fmt.Sprintf("%v/%s", dt, name), func(t *testing.T) {
				m, err := model.LoadGGUF(path, cpu.New())
				if err != nil {
					t.Fatal(err)
				}
				defer m.Free()
				frozen := make([][]float32, 0)
				for _, l := range m.Linears() {
					if l.Weight.DType() != dt {
						t.Fatalf("%s is %v, want %v", l.Name, l.Weight.DType(), dt)
					}
					frozen = append(frozen, readAll(t, m, l))
				}
				var losses []float64
				_, err = train.Run(context.Background(), m, train.Spec{
					Examples: examples, Method: method.name, Options: method.options,
					Steps: 20, Batch: 4, SeqLen: 32, LR: method.lr, Schedule: "constant", Seed: 1,
				}, func(e train.Event) {
					if e.Kind == "step" {
						losses = append(losses, e.Loss)
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(losses) != 20 {
					t.Fatalf("%d step events, want 20", len(losses))
				}
				mean := func(x []float64) float64 {
					var s float64
					for _, v := range x {
						s += v
					}
					return s / float64(len(x))
				}
				first, last := mean(losses[:5]), mean(losses[15:])
				if !(last < first) {
					t.Errorf("loss did not fall: %v", losses)
				}
				for i, l := range m.Linears() {
					if l.Weight.DType() != dt {
						t.Errorf("after training %s is %v, want %v", l.Name, l.Weight.DType(), dt)
					}
					got := readAll(t, m, l)
					for j := range got {
						if math.Float32bits(got[j]) != math.Float32bits(frozen[i][j]) {
							t.Fatalf("training changed the frozen base weight %s", l.Name)
						}
					}
				}
			})
		}
	}
}

func readAll(t *testing.T, m *model.Model, l *model.Linear) []float32 {
	t.Helper()
	out := make([]float32, l.Weight.Shape().Numel())
	if err := m.Backend.Read(l.Weight, 0, out); err != nil {
		t.Fatal(err)
	}
	return out
}
