// Package guest is the body of graft's WebAssembly plugin: one tenant's
// model and adapters, and the msgpack requests of package abi run against
// them. It is plain Go, so the plugin's behaviour can be tested natively and
// compared with the same code run under wazero; wasm/plugin only adds the
// //go:wasmexport shims.
package guest

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"runtime/debug"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/model"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/wasm/plugin/abi"
	"github.com/vmihailenco/msgpack/v5"
)

// Plugin is one tenant's state: a base model and the adapters on it. It is
// not safe for concurrent use (a wasm instance runs one call at a time).
type Plugin struct {
	m         *model.Model
	modelName string
	quantized string         // LoadModelArgs.Quantize of the model
	adapters  []namedAdapter // in load order
	// progress sends a msgpack abi.Progress to the host; true asks to stop.
	progress func(msg []byte) (stop bool)
	// interrupted reports whether the host's deadline has passed.
	interrupted func() bool
}

type namedAdapter struct {
	name string
	a    peft.Adapter
	info abi.AdapterInfo
}

// New returns an empty plugin. progress sends a msgpack abi.Progress to the
// host during training and reports whether the host asked to stop;
// interrupted reports whether the call's deadline has passed. Either may
// be nil.
func New(progress func([]byte) bool, interrupted func() bool) *Plugin {
	return &Plugin{progress: progress, interrupted: interrupted}
}

// errInterrupted ends an operation at a safe point once the host's
// deadline has passed.
var errInterrupted = errorf(abi.CodeInterrupted, "interrupted by the host's deadline")

// checkInterrupted returns errInterrupted when the host wants the call to
// end.
func (p *Plugin) checkInterrupted() error {
	if p.interrupted != nil && p.interrupted() {
		return errInterrupted
	}
	return nil
}

// callError is an error with the abi code the response carries.
type callError struct {
	code string
	err  error
}

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

func errorf(code, format string, args ...any) error {
	return &callError{code, fmt.Errorf(format, args...)}
}

// Handle runs one msgpack abi.Request and returns the msgpack abi.Response.
// It never panics: a panic in an operation becomes a failed response. It
// keeps no slice of req (decoding copies what it keeps), so the plugin
// reuses one request buffer for every call.
func (p *Plugin) Handle(req []byte) []byte { return p.HandleAppend(nil, req) }

// HandleAppend is Handle appending the response to dst, so that a caller
// that reuses one buffer allocates nothing for the response's envelope.
// Under exact deadlines an allocation in the guest is tens of instrumented
// function entries and loop iterations, each a check that leaves the
// guest's code, so an empty call's cost is mostly its allocations.
func (p *Plugin) HandleAppend(dst, req []byte) (resp []byte) {
	var r abi.Request
	if err := abi.DecodeRequest(req, &r); err != nil {
		return append(dst, ErrorResponse(abi.CodeBadRequest, "malformed request: %v", err)...)
	}
	defer func() {
		if v := recover(); v != nil {
			resp = append(dst, ErrorResponse(abi.CodeFailed, "%s: panic: %v\n%s", r.Op, v, debug.Stack())...)
		}
	}()
	result, err := p.dispatch(r)
	var out abi.Response
	if err != nil {
		out.Code, out.Error = abi.CodeFailed, fmt.Sprintf("%s: %v", r.Op, err)
		var ce *callError
		if errors.As(err, &ce) {
			out.Code = ce.code
		}
	}
	// A result goes with success, and with a stop or an interruption (what
	// was done so far).
	if result != nil && !isNil(result) && (err == nil || out.Code == abi.CodeStopped || out.Code == abi.CodeInterrupted) {
		raw, err := abi.Encode(result)
		if err != nil {
			return append(dst, ErrorResponse(abi.CodeFailed, "%s: %v", r.Op, err)...)
		}
		out.Result = raw
	}
	return abi.AppendResponse(dst, &out)
}

// dispatch decodes the arguments of r and runs its operation.
func (p *Plugin) dispatch(r abi.Request) (any, error) {
	switch r.Op {
	case abi.OpPing:
		return nil, nil
	case abi.OpInfo:
		return p.info(), nil
	case abi.OpLoadModel:
		return withArgs(r, p.loadModel)
	case abi.OpLoadAdapter:
		return withArgs(r, p.loadAdapter)
	case abi.OpUnloadAdapter:
		return withArgs(r, func(a abi.AdapterRef) (*struct{}, error) { return nil, p.unloadAdapter(a.Name) })
	case abi.OpGenerate:
		return withArgs(r, p.generate)
	case abi.OpEval:
		return withArgs(r, p.eval)
	case abi.OpTrain:
		return withArgs(r, p.train)
	case abi.OpExportAdapter:
		return withArgs(r, p.exportAdapter)
	}
	return nil, errorf(abi.CodeBadRequest, "unknown operation %q", r.Op)
}

// withArgs decodes r.Args into an A and calls f with it.
func withArgs[A any, R any](r abi.Request, f func(A) (R, error)) (any, error) {
	var args A
	if err := abi.Decode(r.Args, &args); err != nil {
		return nil, errorf(abi.CodeBadRequest, "malformed arguments: %v", err)
	}
	return f(args)
}

// isNil reports whether v is nil or holds a nil pointer.
func isNil(v any) bool {
	rv := reflect.ValueOf(v)
	return !rv.IsValid() || rv.Kind() == reflect.Pointer && rv.IsNil()
}

// ErrorResponse encodes a response that holds only an error.
func ErrorResponse(code, format string, args ...any) []byte {
	b, err := msgpack.Marshal(&abi.Response{Code: code, Error: fmt.Sprintf(format, args...)})
	if err != nil { // a struct of two strings always encodes
		panic(err)
	}
	return b
}

// needModel returns the loaded model or a no_model error.
func (p *Plugin) needModel() (*model.Model, error) {
	if p.m == nil {
		return nil, errorf(abi.CodeNoModel, "no model is loaded; call %s first", abi.OpLoadModel)
	}
	return p.m, nil
}

func (p *Plugin) info() abi.Info {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	in := abi.Info{
		ABIVersion: abi.Version,
		GoVersion:  runtime.Version(),
		PeftTypes:  peft.PeftTypes(),
		Methods:    peft.MethodNames(),
		Adapters:   []string{},
		HeapBytes:  ms.HeapAlloc,
	}
	if p.m != nil {
		mi := modelInfo(p.m, p.modelName, p.quantized)
		in.Model = &mi
	}
	for _, a := range p.adapters {
		in.Adapters = append(in.Adapters, a.name)
	}
	return in
}

// newBackend is the backend every model of the plugin runs on: the CPU,
// with as many threads as the runtime has (one under wasip1).
func newBackend() *cpu.Backend { return cpu.New() }
