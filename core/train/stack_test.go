package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/peft"
)

// TestRunStack trains mixed stacks through Run, given both ways (Method
// "a+b" with shared options, and Stack), and loads the saved stack into a
// fresh model: the same logits, bit for bit.
func TestRunStack(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(*Spec)
		types []string
		// options each part must end up with
		want []map[string]any
	}{
		{"lora+prefix-tuning", func(s *Spec) {
			s.Method, s.Options = "lora+prefix-tuning", map[string]any{"r": 4, "num_virtual_tokens": 6, "target_modules": []string{"q_proj", "v_proj"}}
		}, []string{peft.PeftTypeLoRA, peft.PeftTypePrefixTuning},
			[]map[string]any{{"r": 4, "target_modules": []string{"q_proj", "v_proj"}}, {"num_virtual_tokens": 6}}},
		{"lora+ia3", func(s *Spec) {
			s.Stack = []AdapterSpec{
				{Method: "lora", Options: map[string]any{"r": 4, "target_modules": []string{"q_proj", "v_proj", "down_proj"}}},
				{Method: "ia3"},
			}
		}, []string{peft.PeftTypeLoRA, peft.PeftTypeIA3},
			[]map[string]any{{"r": 4}, {"feedforward_modules": []string{"down_proj"}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := loadRunModel(t)
			out := t.TempDir()
			spec := runSpec(out)
			spec.Method, spec.Options, spec.SaveEvery, spec.LR = "", nil, 10, 1e-2
			c.edit(&spec)
			res, err := Run(context.Background(), m, spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Adapter.Unload()
			t.Logf("%s: eval loss %.4f -> %.4f, train loss %.4f after %d steps, %d trainable parameters",
				c.name, res.EvalBefore, res.EvalLoss, res.Loss, res.Steps, res.TrainableParams)
			if !(res.EvalLoss < 0.8*res.EvalBefore) {
				t.Errorf("eval loss %.4f -> %.4f: did not fall", res.EvalBefore, res.EvalLoss)
			}
			st, ok := res.Adapter.(*peft.Stack)
			if !ok {
				t.Fatalf("adapter %T, want a stack", res.Adapter)
			}
			var types []string
			for _, p := range st.Parts() {
				types = append(types, p.PeftType())
			}
			if !reflect.DeepEqual(types, c.types) {
				t.Errorf("parts %v, want %v", types, c.types)
			}
			if got := res.Spec; got.Method != "" || len(got.Stack) != len(c.want) {
				t.Fatalf("effective spec: method %q, stack %+v", got.Method, got.Stack)
			}
			for i, want := range c.want {
				for k, v := range want {
					if got := res.Spec.Stack[i].Options[k]; !reflect.DeepEqual(got, v) {
						t.Errorf("part %d option %s = %v, want %v", i+1, k, got, v)
					}
				}
			}
			if _, ok := res.Spec.Stack[1].Options["r"]; ok && c.types[1] != peft.PeftTypeLoRA {
				t.Errorf("option r given to %s", c.types[1])
			}
			for _, f := range []string{peft.StackManifestFileName, filepath.Join("checkpoint-10", peft.StackManifestFileName), MetricsFile} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Error(err)
				}
			}

			ids := []int32{1, 403, 407, 261, 378, 430, 269, 343}
			trained, err := m.Forward(m.NewCache(len(ids)), ids, true)
			if err != nil {
				t.Fatal(err)
			}
			fresh := loadRunModel(t)
			src, err := peft.OpenAdapterPath(out)
			if err != nil {
				t.Fatal(err)
			}
			a, _, err := peft.LoadAdapter(fresh, src)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Unload()
			got, err := fresh.Forward(fresh.NewCache(len(ids)), ids, true)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(trained[i]) {
					t.Fatalf("logit %d: loaded %v, trained %v", i, got[i], trained[i])
				}
			}
		})
	}
}

func TestSpecStack(t *testing.T) {
	s := Spec{Method: "lora+ia3", Options: map[string]any{"r": 16, "target_modules": []string{"v_proj"}}}.WithDefaults()
	lora, _ := peft.LookupMethod("lora")
	ia3, _ := peft.LookupMethod("ia3")
	if s.LR != min(lora.LR, ia3.LR) || s.Method != "" || s.Options != nil || len(s.Stack) != 2 {
		t.Fatalf("defaults of a stack: %+v", s)
	}
	if s.Stack[0].Options["r"] != 16 || s.Stack[0].Options["lora_alpha"] != lora.Defaults["lora_alpha"] {
		t.Errorf("lora part options %v", s.Stack[0].Options)
	}
	if _, ok := s.Stack[1].Options["r"]; ok {
		t.Errorf("ia3 got r: %v", s.Stack[1].Options)
	}
	for i := range 2 {
		if !reflect.DeepEqual(s.Stack[i].Options["target_modules"], []string{"v_proj"}) {
			t.Errorf("part %d: target_modules %v, want the shared one", i+1, s.Stack[i].Options["target_modules"])
		}
	}
	if again := s.WithDefaults(); !reflect.DeepEqual(again, s) {
		t.Errorf("WithDefaults is not idempotent for a stack:\n%+v\n%+v", again, s)
	}

	records := stories(2, 0)
	for _, c := range []struct {
		name string
		spec Spec
		want string
	}{
		{"option of no part", Spec{Method: "lora+prefix-tuning", Options: map[string]any{"feedforward_modules": []string{"down_proj"}}}, `option "feedforward_modules" applies to none of the methods of "lora+prefix-tuning"`},
		{"unknown method", Spec{Method: "lora+magic"}, `method "lora+magic": method "magic" is not supported`},
		{"both", Spec{Method: "lora", Stack: []AdapterSpec{{Method: "lora"}, {Method: "ia3"}}}, "give stack, or method and options, not both"},
		{"one part", Spec{Stack: []AdapterSpec{{Method: "lora"}}}, "needs two methods or more"},
		{"twice", Spec{Method: "lora+ia3+lora"}, "method lora is already in the stack"},
		{"nested", Spec{Stack: []AdapterSpec{{Method: "lora+ia3"}, {Method: "prefix-tuning"}}}, "stack part 1: method \"lora+ia3\": a part is one method"},
		{"bad part option", Spec{Stack: []AdapterSpec{{Method: "lora", Options: map[string]any{"r": 0}}, {Method: "ia3"}}}, "stack part 1: lora: "},
		{"config", Spec{Method: "lora+ia3", Config: []byte(`{"peft_type": "LORA"}`)}, "a whole config does not apply to a mixed stack"},
		{"convert", Spec{Method: "lora+ia3", ConvertLoRA: true}, "convert_lora does not apply to a mixed stack"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.spec.Records, c.spec.Steps = records, 1
			err := c.spec.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("err %v; want an invalid spec mentioning %q", err, c.want)
			}
		})
	}
}

// TestRunStackCheckpointing trains LoHa with rank dropout and (IA)³ on
// the same layers with activation checkpointing: the recomputed blocks
// repeat the dropout draws, so the adapter equals the one trained
// without checkpointing, byte for byte.
func TestRunStackCheckpointing(t *testing.T) {
	m := loadRunModel(t)
	spec := func(out string, checkpointing bool) Spec {
		s := runSpec(out)
		s.Method, s.Options, s.Steps, s.EvalEvery, s.Checkpointing = "", nil, 4, 0, checkpointing
		s.Stack = []AdapterSpec{
			{Method: "loha", Options: map[string]any{"r": 4, "rank_dropout": 0.2, "target_modules": []string{"v_proj", "down_proj"}}},
			{Method: "ia3"},
		}
		return s
	}
	outs := [2]string{t.TempDir(), t.TempDir()}
	for i, cp := range []bool{false, true} {
		res, err := Run(context.Background(), m, spec(outs[i], cp), nil)
		if err != nil {
			t.Fatalf("checkpointing %v: %v", cp, err)
		}
		res.Adapter.Unload()
	}
	for _, part := range []string{"loha", "ia3"} {
		a, err := os.ReadFile(filepath.Join(outs[0], part, peft.WeightsFileName))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(outs[1], part, peft.WeightsFileName))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the checkpointed run's weights differ", part)
		}
	}
}
