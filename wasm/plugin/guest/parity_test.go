package guest

import (
	"context"
	"slices"
	"testing"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/internal/parity"
	"github.com/graft-ml/graft/wasm/plugin/abi"
)

// TestEveryMethodMatchesRun trains every registered method (and DoRA and
// QLoRA) for parity.Steps steps through the plugin's train operation, the
// request carrying a whole Spec in msgpack, and checks that every loss
// equals train.Run's on the same Spec in this process, bit for bit. Under
// GOOS=wasip1 both run in wasm; native/host's PluginMatchesNative tests
// hold the plugin to native graft.
func TestEveryMethodMatchesRun(t *testing.T) {
	gguf := readFile(t, modelPath)
	for _, c := range parity.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			p := New(nil, nil)
			var mi abi.ModelInfo
			mustCall(t, p, abi.OpLoadModel, &abi.LoadModelArgs{Name: "stories260K.gguf", GGUF: gguf, Quantize: c.Quantize}, &mi)
			if mi.Quantized != c.Quantize {
				t.Fatalf("model info %+v", mi)
			}
			spec := c.Spec
			var res abi.TrainResult
			mustCall(t, p, abi.OpTrain, &abi.TrainArgs{Spec: &spec}, &res)
			got := parity.Trace{Losses: res.Losses, EvalBefore: deref(res.EvalBefore), EvalAfter: deref(res.EvalAfter), TrainableParams: res.Adapter.Params}

			m, err := model.Load(modelPath, cpu.New())
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			want, err := c.Run(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			dLoss, dEval := parity.MaxDiff(got, want)
			t.Logf("%s: max |plugin - train.Run|: %g over the step losses, %g over the eval losses", c.Name, dLoss, dEval)
			if !parity.Equal(got, want) {
				t.Fatalf("plugin %+v\ntrain.Run %+v", got, want)
			}
			peftType := peft.PeftTypeMixed
			if !c.Spec.IsStack() {
				meth, err := peft.LookupMethod(c.Spec.Method)
				if err != nil {
					t.Fatal(err)
				}
				peftType = meth.PeftType
			}
			if res.Adapter.PeftType != peftType || res.Steps != parity.Steps || res.Spec == nil || res.Spec.LR <= 0 || len(res.Spec.Records) != 0 {
				t.Fatalf("result %+v, spec %+v", res, res.Spec)
			}
			var ex abi.ExportResult
			mustCall(t, p, abi.OpExportAdapter, &abi.ExportArgs{Name: "default"}, &ex)
			if ex.PeftType != peftType || len(ex.Files) == 0 {
				t.Fatalf("export %s with %d files", ex.PeftType, len(ex.Files))
			}
		})
	}
}

// TestInfoListsEveryMethod: hosts discover what the plugin trains.
func TestInfoListsEveryMethod(t *testing.T) {
	var info abi.Info
	mustCall(t, New(nil, nil), abi.OpInfo, nil, &info)
	if !slices.Equal(info.Methods, peft.MethodNames()) || len(info.Methods) < 7 {
		t.Fatalf("methods %v, registry %v", info.Methods, peft.MethodNames())
	}
}
