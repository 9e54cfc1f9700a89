package randgguf_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/data"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
	"github.com/graft-ml/graft/internal/randgguf"
)

// TestFamiliesTrain trains LoRA on all seven of the family's projections,
// then every registered PEFT method with its own defaults and learning
// rate, for 20 steps through train.Run on every family (on Gemma 3 the
// virtual tokens of prompt and prefix tuning skip the embedding scale and
// meet the sliding window), and checks that the loss falls: the mean of the
// last five steps is below the mean of the first five. The data are eight
// fixed 33-token sequences, so an adapter can learn them.
func TestFamiliesTrain(t *testing.T) {
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
	for _, f := range randgguf.Families {
		type method struct {
			name    string
			options map[string]any
			lr      float64 // 0: the method's own
		}
		// LoRA on every projection, then every registered method with its
		// own defaults and learning rate, so a method added to the registry
		// is trained on every family too.
		methods := []method{
			{"lora", map[string]any{"r": 8, "target_modules": []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}}, 1e-2},
		}
		for _, m := range peft.Methods() {
			methods = append(methods, method{m.Name, nil, 0})
		}
		for _, method := range methods {
			name := method.name
			if method.options != nil {
				name += "-all-linear"
			}
			t.Run(fmt.Sprintf("%s/%s", f, name), func(t *testing.T) {
				rm, err := randgguf.NewFamily(f, vocab, 9, nil)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), "m.gguf")
				if err := rm.WriteGGUF(path); err != nil {
					t.Fatal(err)
				}
				m, err := model.LoadGGUF(path, cpu.New())
				if err != nil {
					t.Fatal(err)
				}
				defer m.Free()
				var losses []float64
				res, err := train.Run(context.Background(), m, train.Spec{
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
				t.Logf("%d trainable parameters; loss %.4f over the first five steps, %.4f over the last five", res.TrainableParams, first, last)
				if !(last < first) {
					t.Errorf("loss did not fall: %v", losses)
				}
			})
		}
	}
}
