//go:build js && wasm

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"syscall/js"
	"time"

	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/core/peft"
	"github.com/graft-ml/graft/wasm/browser/engine"
	"github.com/graft-ml/graft/wasm/simd"
)

// session is the worker's one model. mu serializes the calls that use it;
// cancel is guarded separately so that a cancel is not queued behind the
// training run it stops.
type session struct {
	mu     sync.Mutex
	eng    *engine.Engine
	note   string // why auto chose the CPU, if it did
	cancMu sync.Mutex
	cancel context.CancelFunc
}

// loadInfo is what load answers: the model and where it runs.
type loadInfo struct {
	engine.ModelInfo
	BackendNote string `json:"backendNote,omitempty"`
	// Kernels names the CPU backend's kernels (cpu.Kernels):
	// "wasm-simd128" with wasm/simd's, "go" without; KernelsNote says
	// why the SIMD kernels are not in use, when asked for and not.
	Kernels     string  `json:"kernels,omitempty"`
	KernelsNote string  `json:"kernelsNote,omitempty"`
	LoadMS      float64 `json:"loadMs"`
}

// simdKernels instantiates wasm/simd's kernels once, or says why they
// cannot run here (the loader did not expose Go's memory, no SIMD128).
var simdKernels = sync.OnceValues(simd.Instantiate)

// yieldEvery bounds how long training holds the worker's event loop, so
// that cancel messages and the page's requests are answered promptly.
const yieldEvery = 25 * time.Millisecond

func main() {
	s := &session{}
	api := map[string]any{
		"load":          js.FuncOf(s.load),
		"methods":       js.FuncOf(methods),
		"train":         js.FuncOf(s.train),
		"cancelTrain":   js.FuncOf(s.cancelTrain),
		"generate":      js.FuncOf(s.generate),
		"logits":        js.FuncOf(s.logits),
		"evaluate":      js.FuncOf(s.evaluate),
		"exportAdapter": js.FuncOf(s.exportAdapter),
		"importAdapter": js.FuncOf(s.importAdapter),
		"dropAdapter":   js.FuncOf(s.dropAdapter),
		"dispose":       js.FuncOf(s.dispose),
	}
	js.Global().Set("graftGo", js.ValueOf(api))
	if ready := js.Global().Get("graftGoReady"); ready.Type() == js.TypeFunction {
		ready.Invoke()
	}
	select {} // the functions above run for the life of the worker
}

// need runs f with the loaded engine under the session lock.
func (s *session) need(f func(e *engine.Engine) (any, error)) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng == nil {
		return nil, errors.New("graft: no model loaded; call load first")
	}
	return f(s.eng)
}

// loadOptions are load's optional fourth argument, as JSON.
type loadOptions struct {
	// Quantize "nf4" makes the base a QLoRA base (engine.Quantize).
	Quantize    string `json:"quantize"`
	DoubleQuant bool   `json:"doubleQuant"`
	// SIMD false runs the CPU backend on the portable Go kernels even
	// where the WebAssembly SIMD128 ones can run (to compare them).
	SIMD *bool `json:"simd"`
}

// methods() -> JSON []engine.MethodInfo: every method train accepts.
func methods(js.Value, []js.Value) any {
	v, err := jsonValue(engine.Methods())
	if err != nil {
		return js.Null()
	}
	return v
}

// load(modelBytes: Uint8Array, name: string, backend: "auto"|"webgpu"|"cpu", optionsJSON?: string) -> Promise<JSON loadInfo>
func (s *session) load(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		if len(args) < 3 {
			return nil, errors.New("load(modelBytes, name, backend) takes 3 arguments")
		}
		data, err := bytesOf(args[0], "model bytes")
		if err != nil {
			return nil, err
		}
		name, err := stringArg(args, 1, "model name")
		if err != nil {
			return nil, err
		}
		pref, err := stringArg(args, 2, "backend")
		if err != nil {
			return nil, err
		}
		var opts loadOptions
		if len(args) > 3 && args[3].Type() == js.TypeString {
			if err := jsonArg(args, 3, "load options", &opts); err != nil {
				return nil, err
			}
		}
		if opts.DoubleQuant && opts.Quantize == "" {
			return nil, errors.New(`load: doubleQuant needs quantize: "nf4"`)
		}
		start := time.Now()
		b, bname, note, err := chooseBackend(pref)
		if err != nil {
			return nil, err
		}
		e, err := engine.Load(data, name, b, bname)
		if err != nil {
			return nil, err
		}
		if opts.Quantize != "" {
			if err := e.Quantize(opts.Quantize, opts.DoubleQuant); err != nil {
				e.Close()
				return nil, fmt.Errorf("load %s: %w", name, err)
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.eng != nil {
			s.eng.Close()
		}
		s.eng, s.note = e, note
		info := loadInfo{ModelInfo: e.Info(), BackendNote: note}
		// The kernels are switched here, under the session lock, so
		// that no operation of a run is in flight.
		if opts.SIMD == nil || *opts.SIMD {
			k, err := simdKernels()
			if err == nil {
				cpu.UseExternal(k)
			} else {
				cpu.UseExternal(nil)
				info.KernelsNote = err.Error()
			}
		} else {
			cpu.UseExternal(nil)
		}
		if bname == prefCPU {
			info.Kernels = cpu.Kernels()
		}
		info.LoadMS = ms(time.Since(start))
		return jsonValue(info)
	})
}

// train(requestJSON: string, onProgress: (progressJSON: string) => void) -> Promise<JSON TrainResult>
func (s *session) train(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		var req engine.TrainRequest
		if err := jsonArg(args, 0, "train request", &req); err != nil {
			return nil, err
		}
		var onProgress js.Value
		if len(args) > 1 && args[1].Type() == js.TypeFunction {
			onProgress = args[1]
		}
		return s.need(func(e *engine.Engine) (any, error) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s.cancMu.Lock()
			s.cancel = cancel
			s.cancMu.Unlock()
			defer func() {
				s.cancMu.Lock()
				s.cancel = nil
				s.cancMu.Unlock()
			}()
			lastYield := time.Now()
			res, err := e.Train(ctx, req, func(p engine.Progress) {
				if onProgress.Type() == js.TypeFunction {
					if msg, err := jsonValue(p); err == nil {
						onProgress.Invoke(msg)
					}
				}
				if time.Since(lastYield) >= yieldEvery {
					time.Sleep(time.Millisecond) // parks the goroutine: the event loop runs
					lastYield = time.Now()
				}
			})
			if errors.Is(err, context.Canceled) {
				return nil, fmt.Errorf("AbortError: training cancelled after step %d of %d", res.Steps, res.TotalSteps)
			}
			if err != nil {
				return nil, err
			}
			return jsonValue(res)
		})
	})
}

// cancelTrain() stops the running training after its current step.
func (s *session) cancelTrain(js.Value, []js.Value) any {
	s.cancMu.Lock()
	defer s.cancMu.Unlock()
	if s.cancel != nil {
		s.cancel()
		return true
	}
	return false
}

// generate(requestJSON: string) -> Promise<JSON GenerateResult>
func (s *session) generate(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		var req engine.GenerateRequest
		if err := jsonArg(args, 0, "generate request", &req); err != nil {
			return nil, err
		}
		return s.need(func(e *engine.Engine) (any, error) {
			res, err := e.Generate(req)
			if err != nil {
				return nil, err
			}
			return jsonValue(res)
		})
	})
}

// evaluate(requestJSON: string) -> Promise<JSON EvaluateResult>
func (s *session) evaluate(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		var req engine.EvaluateRequest
		if err := jsonArg(args, 0, "evaluate request", &req); err != nil {
			return nil, err
		}
		return s.need(func(e *engine.Engine) (any, error) {
			res, err := e.Evaluate(req)
			if err != nil {
				return nil, err
			}
			return jsonValue(res)
		})
	})
}

// logits(prompt: string) -> Promise<Float32Array> of positions × vocab.
func (s *session) logits(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		prompt, err := stringArg(args, 0, "prompt")
		if err != nil {
			return nil, err
		}
		return s.need(func(e *engine.Engine) (any, error) {
			l, err := e.Logits(prompt)
			if err != nil {
				return nil, err
			}
			// One copy of bytes, viewed as floats on the JS side.
			raw := make([]byte, 4*len(l))
			for i, v := range l {
				binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
			}
			return js.Global().Get("Float32Array").New(uint8Array(raw).Get("buffer")), nil
		})
	})
}

// exportAdapter(format: "peft"|"msgpack") -> Promise<{[file]: Uint8Array} | Uint8Array>
func (s *session) exportAdapter(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		format, err := stringArg(args, 0, "format")
		if err != nil {
			return nil, err
		}
		return s.need(func(e *engine.Engine) (any, error) {
			switch format {
			case engine.FormatMsgpack:
				b, err := e.ExportBundle()
				if err != nil {
					return nil, err
				}
				return uint8Array(b), nil
			case engine.FormatPEFT:
				files, err := e.ExportFiles()
				if err != nil {
					return nil, err
				}
				obj := js.Global().Get("Object").New()
				for name, b := range files {
					obj.Set(name, uint8Array(b))
				}
				return obj, nil
			}
			return nil, fmt.Errorf("export: format %q: want %q or %q", format, engine.FormatPEFT, engine.FormatMsgpack)
		})
	})
}

// importAdapter(data: Uint8Array (a msgpack bundle) | {[file]: Uint8Array} (PEFT files), name: string) -> Promise<peftType>
func (s *session) importAdapter(_ js.Value, args []js.Value) any {
	return promise(func() (any, error) {
		if len(args) < 1 || args[0].Type() != js.TypeObject {
			return nil, errors.New("import: give a Uint8Array (msgpack bundle) or an object of PEFT files")
		}
		name := "adapter"
		if len(args) > 1 && args[1].Type() == js.TypeString {
			name = args[1].String()
		}
		return s.need(func(e *engine.Engine) (any, error) {
			if args[0].InstanceOf(js.Global().Get("Uint8Array")) {
				b, _ := bytesOf(args[0], "bundle")
				return e.ImportBundle(b, name)
			}
			files := peft.Files{}
			keys := js.Global().Get("Object").Call("keys", args[0])
			for i := range keys.Length() {
				k := keys.Index(i).String()
				b, err := bytesOf(args[0].Get(k), "import: file "+k)
				if err != nil {
					return nil, err
				}
				files[k] = b
			}
			return e.ImportFiles(files, name)
		})
	})
}

// dropAdapter() -> Promise<undefined>: back to the base model.
func (s *session) dropAdapter(js.Value, []js.Value) any {
	return promise(func() (any, error) {
		_, err := s.need(func(e *engine.Engine) (any, error) { return nil, e.DropAdapter() })
		return js.Undefined(), err
	})
}

// dispose() frees the model.
func (s *session) dispose(js.Value, []js.Value) any {
	return promise(func() (any, error) {
		s.cancelTrain(js.Undefined(), nil)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.eng != nil {
			s.eng.Close()
			s.eng = nil
		}
		return js.Undefined(), nil
	})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
