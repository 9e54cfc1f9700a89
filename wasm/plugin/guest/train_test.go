package guest

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/core/train"
	"github.com/graft-ml/graft/wasm/plugin/abi"
)

// trainArgs is a short run on the example data that lowers the eval loss
// with every method below.
func trainArgs(t testing.TB, method string, options map[string]any) abi.TrainArgs {
	return abi.TrainArgs{
		Method: method, Options: options,
		Data: readFile(t, trainPath), EvalData: readFile(t, evalPath),
		Steps: 12, Batch: 4, SeqLen: 64, Pack: true, LR: 1e-2, Seed: 1,
	}
}

// methods are PEFT methods trained through the older TrainArgs fields,
// named as the ABI's first version named them (the upper-cased peft_type
// spelling) and as the registry does, with a few options.
// TestEveryMethodMatchesRun trains every method through a Spec.
var methods = []struct {
	method   string
	options  map[string]any
	peftType string
}{
	{"lora", map[string]any{"r": 8, "lora_alpha": 16, "target_modules": []string{"q_proj", "k_proj", "v_proj", "o_proj"}}, "LORA"},
	{"ia3", nil, "IA3"},
	{"prompt_tuning", map[string]any{"num_virtual_tokens": 8}, "PROMPT_TUNING"},
	{"houlsby", map[string]any{"reduction_factor": 4}, "BOTTLENECK"},
}

func TestTrainLowersEvalLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("12-step runs of several methods; in -short mode (wasm) TestEveryMethodMatchesRun trains every method")
	}
	for _, tc := range methods {
		t.Run(tc.method, func(t *testing.T) {
			var events []abi.Progress
			p := loaded(t)
			p.progress = func(msg []byte) bool {
				var e abi.Progress
				if err := abi.Decode(msg, &e); err != nil {
					t.Errorf("progress message: %v", err)
				}
				events = append(events, e)
				return false
			}
			var res abi.TrainResult
			mustCall(t, p, abi.OpTrain, ptr(trainArgs(t, tc.method, tc.options)), &res)
			if res.EvalBefore == nil || res.EvalAfter == nil || !(*res.EvalAfter < *res.EvalBefore) {
				t.Fatalf("eval loss %v -> %v, want lower", deref(res.EvalBefore), deref(res.EvalAfter))
			}
			if res.Steps != 12 || len(res.Losses) != 12 || res.Adapter.Name != "default" || res.Adapter.Params == 0 {
				t.Fatalf("result %+v", res)
			}
			if res.Adapter.PeftType != tc.peftType {
				t.Fatalf("peft_type %q, want %q", res.Adapter.PeftType, tc.peftType)
			}
			steps := 0
			for _, e := range events {
				if e.Kind == "step" {
					steps++
				}
			}
			if steps != 12 || events[len(events)-1].Kind != "done" {
				t.Fatalf("%d step events of %d events, last %+v", steps, len(events), events[len(events)-1])
			}
			var info abi.Info
			mustCall(t, p, abi.OpInfo, nil, &info)
			if !slices.Equal(info.Adapters, []string{"default"}) {
				t.Fatalf("adapters %v", info.Adapters)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// deref returns *p, or NaN for nil.
func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// TestExportImportRoundTrip trains an adapter, exports it (as files and as
// a bundle) and loads it into a fresh plugin: the logits must be the same.
func TestExportImportRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("12-step runs of several methods; in -short mode (wasm) TestEveryMethodMatchesRun trains every method")
	}
	for _, tc := range methods {
		t.Run(tc.method, func(t *testing.T) {
			src := loaded(t)
			mustCall(t, src, abi.OpTrain, ptr(trainArgs(t, tc.method, tc.options)), nil)
			probe := &abi.EvalArgs{Texts: []string{"Once upon a time, a little blue owl named Pip"}, Logits: true}
			var want abi.EvalResult
			mustCall(t, src, abi.OpEval, probe, &want)

			var files, bundled abi.ExportResult
			mustCall(t, src, abi.OpExportAdapter, &abi.ExportArgs{Name: "default"}, &files)
			mustCall(t, src, abi.OpExportAdapter, &abi.ExportArgs{Name: "default", Bundle: true}, &bundled)
			if _, ok := files.Files["adapter_config.json"]; !ok || len(bundled.Bundle) == 0 {
				t.Fatalf("export: files %v, bundle of %d bytes", keys(files.Files), len(bundled.Bundle))
			}
			for _, args := range []*abi.LoadAdapterArgs{
				{Name: "files", Files: files.Files},
				{Name: "bundle", Bundle: bundled.Bundle},
			} {
				dst := loaded(t)
				var base abi.EvalResult
				mustCall(t, dst, abi.OpEval, probe, &base)
				var info abi.AdapterInfo
				mustCall(t, dst, abi.OpLoadAdapter, args, &info)
				if info.PeftType != files.PeftType {
					t.Fatalf("%s: loaded %s, exported %s", args.Name, info.PeftType, files.PeftType)
				}
				var got abi.EvalResult
				mustCall(t, dst, abi.OpEval, probe, &got)
				if got.SumNLL != want.SumNLL || !slices.Equal(got.Logits[0], want.Logits[0]) {
					t.Fatalf("%s: loss %v after the round trip, %v before", args.Name, got.SumNLL, want.SumNLL)
				}
				if base.SumNLL == want.SumNLL {
					t.Fatalf("the trained adapter changes nothing")
				}
				mustCall(t, dst, abi.OpUnloadAdapter, &abi.AdapterRef{Name: args.Name}, nil)
				mustCall(t, dst, abi.OpEval, probe, &got)
				if got.SumNLL != base.SumNLL {
					t.Fatalf("%s: loss %v after unloading, base %v", args.Name, got.SumNLL, base.SumNLL)
				}
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestTrainStopsWhenAsked stops a run through the progress callback: the
// result so far comes back with a stopped code and the adapter stays.
func TestTrainStopsWhenAsked(t *testing.T) {
	p := loaded(t)
	p.progress = func(msg []byte) bool {
		var e abi.Progress
		if err := abi.Decode(msg, &e); err != nil {
			t.Fatal(err)
		}
		return e.Kind == "step" && e.Step == 3
	}
	var res abi.TrainResult
	code, msg := call(t, p, abi.OpTrain, ptr(trainArgs(t, methods[0].method, methods[0].options)), &res)
	if code != abi.CodeStopped || !strings.Contains(msg, "after step 3 of 12") {
		t.Fatalf("got %s: %q", code, msg)
	}
	if res.Steps != 3 || res.Adapter.Name != "default" {
		t.Fatalf("partial result %+v", res)
	}
	mustCall(t, p, abi.OpExportAdapter, &abi.ExportArgs{Name: "default"}, nil)
}

func TestTrainArguments(t *testing.T) {
	p := loaded(t)
	lora := methods[0]
	good := trainArgs(t, lora.method, lora.options)
	for _, tc := range []struct {
		name string
		edit func(a *abi.TrainArgs)
		code string
		want string
	}{
		{"config and method", func(a *abi.TrainArgs) { a.Config = []byte(`{"peft_type":"LORA","r":4}`) }, abi.CodeBadRequest, "not both"},
		{"unknown method", func(a *abi.TrainArgs) { a.Method = "sorcery" }, abi.CodeBadRequest, `method "sorcery" is not supported (supported: houlsby, ia3, `},
		{"no data", func(a *abi.TrainArgs) { a.Data = nil }, abi.CodeBadRequest, "train data is empty"},
		{"bad jsonl", func(a *abi.TrainArgs) { a.Data = []byte("{\"text\": 1}\n") }, abi.CodeBadRequest, "train data:1"},
		{"no steps", func(a *abi.TrainArgs) { a.Steps = 0 }, abi.CodeBadRequest, "steps"},
		{"bad lr", func(a *abi.TrainArgs) { a.LR = -1 }, abi.CodeBadRequest, "lr"},
		{"spec with a path", func(a *abi.TrainArgs) { a.Spec = &train.Spec{Out: "/tmp/x"} }, abi.CodeBadRequest, "no file system"},
		{"bad options", func(a *abi.TrainArgs) { a.Options = map[string]any{"r": "eight"} }, abi.CodeBadRequest, "r"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := good
			tc.edit(&args)
			code, msg := call(t, p, abi.OpTrain, &args, nil)
			if code != tc.code || !strings.Contains(msg, tc.want) {
				t.Fatalf("got %s: %q, want %s: ...%s...", code, msg, tc.code, tc.want)
			}
		})
	}
	// A refused run leaves no adapter behind, so the name is still free.
	good.Steps = 1
	mustCall(t, p, abi.OpTrain, &good, nil)
	code, msg := call(t, p, abi.OpTrain, &good, nil)
	if code != abi.CodeExists || !strings.Contains(msg, `"default" is already loaded`) {
		t.Fatalf("second run under the same name: %s: %q", code, msg)
	}
	// With no lr the method's recommended one trains.
	good.Adapter, good.LR = "default-lr", 0
	var res abi.TrainResult
	mustCall(t, p, abi.OpTrain, &good, &res)
	if meth, _ := peft.LookupMethod("lora"); meth.LR > 0 && res.Spec.LR != meth.LR {
		t.Fatalf("lr %v, want lora's %v", res.Spec.LR, meth.LR)
	}
	// With no method, LoRA (graft train's default) with its settings.
	good.Adapter, good.Method, good.Options = "default-method", "", nil
	mustCall(t, p, abi.OpTrain, &good, &res)
	if meth, _ := peft.LookupMethod("lora"); res.Spec.Method != "lora" || res.Adapter.PeftType != "LORA" ||
		fmt.Sprint(res.Spec.Options["r"]) != fmt.Sprint(meth.Defaults["r"]) {
		t.Fatalf("no method trained %s %v, want lora with r %v", res.Spec.Method, res.Spec.Options, meth.Defaults["r"])
	}
	// A full adapter_config.json works as well as method and options.
	good.Adapter, good.Method, good.Options = "from-config", "", nil
	good.Config = []byte(`{"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}`)
	mustCall(t, p, abi.OpTrain, &good, &res)
	if res.Adapter.Name != "from-config" || res.Adapter.PeftType != "LORA" {
		t.Fatalf("result %+v", res.Adapter)
	}
}

// TestInterruptedAtSafePoints: once the host reports its deadline passed,
// generation, evaluation and training end at their next safe point with
// CodeInterrupted, and the plugin keeps working.
func TestInterruptedAtSafePoints(t *testing.T) {
	p := loaded(t)
	calls, after := 0, 0
	p.interrupted = func() bool { calls++; return calls > after }

	after = 3
	var gen abi.GenerateResult
	if code, msg := call(t, p, abi.OpGenerate, &abi.GenerateArgs{Prompt: "Once", MaxTokens: 50}, &gen); code != abi.CodeInterrupted || !strings.Contains(msg, "deadline") {
		t.Fatalf("generate: %s: %q", code, msg)
	}
	calls, after = 0, 1
	if code, _ := call(t, p, abi.OpEval, &abi.EvalArgs{Texts: []string{"a", "b", "c"}}, nil); code != abi.CodeInterrupted {
		t.Fatalf("eval: %s", code)
	}
	// The deadline passes during step 3: the host learns of it at the
	// next safe point, the end of that step.
	step := 0
	p.progress = func(msg []byte) bool {
		var e abi.Progress
		if err := abi.Decode(msg, &e); err != nil {
			t.Fatal(err)
		}
		if e.Kind == "step" {
			step = e.Step
		}
		return false
	}
	p.interrupted = func() bool { return step >= 2 }
	var res abi.TrainResult
	code, msg := call(t, p, abi.OpTrain, ptr(trainArgs(t, methods[0].method, methods[0].options)), &res)
	if code != abi.CodeInterrupted || !strings.Contains(msg, "after step 3 of 12") || res.Steps != 3 || len(res.Losses) != 3 || res.EvalAfter != nil {
		t.Fatalf("train: %s: %q, result %+v", code, msg, res)
	}
	p.interrupted, p.progress = nil, nil
	mustCall(t, p, abi.OpGenerate, &abi.GenerateArgs{Prompt: "Once", MaxTokens: 3}, nil)
}
