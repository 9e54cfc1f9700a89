package host

import (
	"context"
	"fmt"

	"github.com/graft-ml/graft/wasm/plugin/abi"
)

// The plugin's messages, under the names callers of this package use.
type (
	Info             = abi.Info
	ModelInfo        = abi.ModelInfo
	LoadModelRequest = abi.LoadModelArgs
	AdapterInfo      = abi.AdapterInfo
	GenerateRequest  = abi.GenerateArgs
	GenerateResult   = abi.GenerateResult
	EvalRequest      = abi.EvalArgs
	EvalResult       = abi.EvalResult
	TrainRequest     = abi.TrainArgs
	TrainResult      = abi.TrainResult
	Progress         = abi.Progress
)

// Call runs one operation: args (nil for none) is encoded as its
// arguments and the result decoded into result (nil to ignore it). A
// refusal or failure inside the plugin is a *CallError; the instance stays
// usable. A stopped training run decodes its partial result and returns
// an error matching ErrStopped.
func (in *Instance) Call(ctx context.Context, op string, args, result any) error {
	return in.callWithProgress(ctx, op, args, result, nil)
}

func (in *Instance) callWithProgress(ctx context.Context, op string, args, result any, progress func(abi.Progress) error) error {
	req := abi.Request{Op: op}
	if args != nil {
		raw, err := abi.Encode(args)
		if err != nil {
			return fmt.Errorf("plugin %s: %s: %w", in.name, op, err)
		}
		req.Args = raw
	}
	reqBytes, err := abi.Encode(&req)
	if err != nil {
		return fmt.Errorf("plugin %s: %s: %w", in.name, op, err)
	}
	respBytes, ctxErr, err := in.rawCall(ctx, op, reqBytes, progress)
	if err != nil {
		return err
	}
	var resp abi.Response
	if err := abi.Decode(respBytes, &resp); err != nil {
		return fmt.Errorf("plugin %s: %s: %w: malformed response: %v", in.name, op, ErrCrashed, err)
	}
	if result != nil && len(resp.Result) > 0 {
		if err := abi.Decode(resp.Result, result); err != nil {
			return fmt.Errorf("plugin %s: %s: %w: malformed result: %v", in.name, op, ErrCrashed, err)
		}
	}
	if resp.Code != "" || resp.Error != "" {
		ce := &CallError{Instance: in.name, Op: op, Code: resp.Code, Message: resp.Error}
		if resp.Code == abi.CodeInterrupted {
			ce.cause = ctxErr
		}
		return ce
	}
	return nil
}

// Ping runs an empty call: the fixed cost of crossing into the guest.
func (in *Instance) Ping(ctx context.Context) error { return in.Call(ctx, abi.OpPing, nil, nil) }

// Info describes the plugin and what the instance holds.
func (in *Instance) Info(ctx context.Context) (Info, error) {
	var info Info
	if err := in.Call(ctx, abi.OpInfo, nil, &info); err != nil {
		return info, err
	}
	in.callMu.Lock()
	if in.Err() == nil {
		info.MemoryBytes = uint64(in.mod.Memory().Size())
	}
	in.callMu.Unlock()
	return info, nil
}

// LoadModel loads a GGUF model from its bytes into the instance, replacing
// its model and adapters; name appears in errors.
func (in *Instance) LoadModel(ctx context.Context, name string, gguf []byte) (ModelInfo, error) {
	var mi ModelInfo
	err := in.Call(ctx, abi.OpLoadModel, &abi.LoadModelArgs{Name: name, GGUF: gguf}, &mi)
	return mi, err
}

// LoadModelWith loads a GGUF model as req says: with Quantize "nf4" its
// decoder projections become NF4, a QLoRA base for training LoRA.
func (in *Instance) LoadModelWith(ctx context.Context, req LoadModelRequest) (ModelInfo, error) {
	var mi ModelInfo
	err := in.Call(ctx, abi.OpLoadModel, &req, &mi)
	return mi, err
}

// LoadAdapter loads an adapter from its PEFT files (adapter_config.json,
// adapter_model.safetensors) under name. Loaded adapters act together.
func (in *Instance) LoadAdapter(ctx context.Context, name string, files map[string][]byte) (AdapterInfo, error) {
	var ai AdapterInfo
	err := in.Call(ctx, abi.OpLoadAdapter, &abi.LoadAdapterArgs{Name: name, Files: files}, &ai)
	return ai, err
}

// LoadAdapterBundle loads an adapter from a msgpack bundle
// (core/formats/bundle) under name.
func (in *Instance) LoadAdapterBundle(ctx context.Context, name string, bundle []byte) (AdapterInfo, error) {
	var ai AdapterInfo
	err := in.Call(ctx, abi.OpLoadAdapter, &abi.LoadAdapterArgs{Name: name, Bundle: bundle}, &ai)
	return ai, err
}

// UnloadAdapter removes the named adapter from the model.
func (in *Instance) UnloadAdapter(ctx context.Context, name string) error {
	return in.Call(ctx, abi.OpUnloadAdapter, &abi.AdapterRef{Name: name}, nil)
}

// Generate continues a prompt with the model and its adapters.
func (in *Instance) Generate(ctx context.Context, req GenerateRequest) (GenerateResult, error) {
	var res GenerateResult
	err := in.Call(ctx, abi.OpGenerate, &req, &res)
	return res, err
}

// Eval scores sequences and, when asked, returns their logits.
func (in *Instance) Eval(ctx context.Context, req EvalRequest) (EvalResult, error) {
	var res EvalResult
	err := in.Call(ctx, abi.OpEval, &req, &res)
	return res, err
}

// Train trains a new adapter of any method graft implements (Info's
// Methods), as train.Run carries out req.Spec or the fields that stand
// for one (see abi.TrainArgs), and leaves it loaded. onProgress, when not nil, receives progress events during the
// call, on the calling goroutine, and must return promptly; returning an
// error stops the run at the next step, and Train then returns the partial
// result with an error matching ErrStopped.
func (in *Instance) Train(ctx context.Context, req TrainRequest, onProgress func(Progress) error) (TrainResult, error) {
	var res TrainResult
	err := in.callWithProgress(ctx, abi.OpTrain, &req, &res, onProgress)
	return res, err
}

// ExportAdapter returns the named adapter's files in PEFT's format.
func (in *Instance) ExportAdapter(ctx context.Context, name string) (map[string][]byte, error) {
	var res abi.ExportResult
	err := in.Call(ctx, abi.OpExportAdapter, &abi.ExportArgs{Name: name}, &res)
	return res.Files, err
}

// ExportAdapterBundle returns the named adapter as one msgpack bundle.
func (in *Instance) ExportAdapterBundle(ctx context.Context, name string) ([]byte, error) {
	var res abi.ExportResult
	err := in.Call(ctx, abi.OpExportAdapter, &abi.ExportArgs{Name: name, Bundle: true}, &res)
	return res.Bundle, err
}
