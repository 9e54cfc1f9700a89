package host

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/graft-ml/graft/wasm/plugin/abi"
	"github.com/graft-ml/graft/wasm/plugin/guest"
)

type method struct {
	name    string
	options map[string]any
}

// methods are the PEFT methods trained through the plugin, with the
// options each needs; peft.NewAdapter builds each from the JSON they make.
var methods = []method{
	{"lora", map[string]any{"r": 8, "lora_alpha": 16, "target_modules": []string{"q_proj", "k_proj", "v_proj", "o_proj"}}},
	{"ia3", nil},
	{"prompt_tuning", map[string]any{"num_virtual_tokens": 8}},
}

// trainRequest is a short run of method m on the example data, evaluated
// on the first 8 held-out stories.
func trainRequest(t testing.TB, m method) TrainRequest {
	eval := readFile(t, evalPath)
	for i, n := 0, 0; i < len(eval); i++ {
		if eval[i] == '\n' {
			if n++; n == 8 {
				eval = eval[:i+1]
				break
			}
		}
	}
	return TrainRequest{
		Method: m.name, Options: m.options,
		Data: readFile(t, trainPath), EvalData: eval,
		Steps: 10, Batch: 4, SeqLen: 64, Pack: true, LR: 1e-2, Seed: 7,
	}
}

// nativeTrain runs the plugin's own code natively (package guest) on the
// same request, for comparison.
func nativeTrain(t testing.TB, req TrainRequest) TrainResult {
	t.Helper()
	p := guest.New(nil, nil)
	nativeCall(t, p, abi.OpLoadModel, &abi.LoadModelArgs{Name: "stories260K.gguf", GGUF: readFile(t, modelPath)}, nil)
	var res TrainResult
	nativeCall(t, p, abi.OpTrain, &req, &res)
	return res
}

// nativeCall runs one request on the plugin's code natively.
func nativeCall(t testing.TB, p *guest.Plugin, op string, args, result any) {
	t.Helper()
	raw, err := abi.Encode(args)
	if err != nil {
		t.Fatal(err)
	}
	b, err := abi.Encode(&abi.Request{Op: op, Args: raw})
	if err != nil {
		t.Fatal(err)
	}
	var resp abi.Response
	if err := abi.Decode(p.Handle(b), &resp); err != nil || resp.Code != "" {
		t.Fatalf("native %s: %v %s %s", op, err, resp.Code, resp.Error)
	}
	if result != nil {
		if err := abi.Decode(resp.Result, result); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTrainThroughPlugin trains each method inside the plugin: the eval
// loss falls, progress reaches the host, and every step's loss equals the
// same run done natively.
func TestTrainThroughPlugin(t *testing.T) {
	if len(methods) != 3 {
		t.Fatal("keep LoRA, IA3 and prompt tuning in the table")
	}
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			in := withModel(t, testHost(t))
			req := trainRequest(t, m)
			var events []Progress
			res, err := in.Train(context.Background(), req, func(p Progress) error {
				events = append(events, p)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.EvalBefore == nil || res.EvalAfter == nil || !(*res.EvalAfter < *res.EvalBefore) {
				t.Fatalf("eval loss %v -> %v, want lower", res.EvalBefore, res.EvalAfter)
			}
			if res.Adapter.PeftType != strings.ToUpper(m.name) || res.Steps != req.Steps {
				t.Errorf("result %+v", res)
			}
			// start, the baseline eval, steps (with the last one's eval), done.
			kinds := []string{}
			for _, e := range events {
				if len(kinds) == 0 || kinds[len(kinds)-1] != e.Kind {
					kinds = append(kinds, e.Kind)
				}
			}
			if !slices.Equal(kinds, []string{"start", "eval", "step", "eval", "done"}) || events[2].Step != 1 || events[1].EvalLoss != *res.EvalBefore {
				t.Errorf("progress events %+v", events)
			}
			native := nativeTrain(t, req)
			if !sameFloats(res.Losses, native.Losses) || !sameFloat(*res.EvalAfter, *native.EvalAfter) {
				t.Errorf("plugin losses %v (eval %v), native %v (eval %v)", res.Losses, *res.EvalAfter, native.Losses, *native.EvalAfter)
			}
		})
	}
}

// TestExportImportAcrossInstances moves a trained adapter to another
// tenant as PEFT files and as a bundle.
func TestExportImportAcrossInstances(t *testing.T) {
	ctx := context.Background()
	h := testHost(t)
	src := withModel(t, h)
	req := trainRequest(t, methods[0])
	req.Steps, req.EvalData = 4, nil
	if _, err := src.Train(ctx, req, nil); err != nil {
		t.Fatal(err)
	}
	probe := EvalRequest{Texts: probeTexts}
	want, err := src.Eval(ctx, probe)
	if err != nil {
		t.Fatal(err)
	}
	files, err := src.ExportAdapter(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := src.ExportAdapterBundle(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	dst := withModel(t, h)
	base, err := dst.Eval(ctx, probe)
	if err != nil {
		t.Fatal(err)
	}
	if base.SumNLL == want.SumNLL {
		t.Fatal("the trained adapter changes nothing")
	}
	for _, load := range []func() (AdapterInfo, error){
		func() (AdapterInfo, error) { return dst.LoadAdapter(ctx, "imported", files) },
		func() (AdapterInfo, error) { return dst.LoadAdapterBundle(ctx, "imported", bundle) },
	} {
		info, err := load()
		if err != nil {
			t.Fatal(err)
		}
		if info.PeftType != "LORA" || info.Name != "imported" {
			t.Fatalf("loaded %+v", info)
		}
		got, err := dst.Eval(ctx, probe)
		if err != nil {
			t.Fatal(err)
		}
		if got.SumNLL != want.SumNLL {
			t.Fatalf("loss %v after import, %v where trained", got.SumNLL, want.SumNLL)
		}
		if err := dst.UnloadAdapter(ctx, "imported"); err != nil {
			t.Fatal(err)
		}
	}
	if err := dst.UnloadAdapter(ctx, "imported"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unloading twice: %v, want ErrNotFound", err)
	}
}

// TestHostStopsTraining: a progress callback's error stops the run at the
// next step; the partial adapter stays and the instance keeps serving.
func TestHostStopsTraining(t *testing.T) {
	ctx := context.Background()
	in := withModel(t, testHost(t))
	enough := errors.New("enough")
	req := trainRequest(t, methods[0])
	req.EvalData = nil
	res, err := in.Train(ctx, req, func(p Progress) error {
		if p.Step == 2 {
			return enough
		}
		return nil
	})
	var ce *CallError
	if !errors.Is(err, ErrStopped) || !errors.As(err, &ce) || ce.Op != abi.OpTrain {
		t.Fatalf("err = %v, want a stopped CallError", err)
	}
	if res.Steps != 2 || len(res.Losses) != 2 {
		t.Fatalf("partial result %+v", res)
	}
	if _, err := in.ExportAdapter(ctx, "default"); err != nil {
		t.Fatal(err)
	}
}
