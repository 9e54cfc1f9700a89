//go:build js && wasm

package main

import (
	"fmt"
	"syscall/js"

	"github.com/graft-ml/graft/core/backend"
	"github.com/graft-ml/graft/core/cpu"
	"github.com/graft-ml/graft/gpu"
)

// Backend preferences the page may ask for.
const (
	prefAuto   = "auto"   // WebGPU when navigator.gpu gives an adapter, else the CPU
	prefWebGPU = "webgpu" // WebGPU or an error
	prefCPU    = "cpu"
)

// chooseBackend is the one place that decides where the model runs. It
// returns the backend, its short name ("webgpu" or "cpu") and, when auto
// fell back to the CPU, why.
func chooseBackend(pref string) (b backend.Backend, name, note string, err error) {
	switch pref {
	case "", prefAuto, prefWebGPU:
	case prefCPU:
		return cpu.New(), prefCPU, "", nil
	default:
		return nil, "", "", fmt.Errorf("backend %q: want %q, %q or %q", pref, prefAuto, prefWebGPU, prefCPU)
	}
	g, gerr := openWebGPU()
	if gerr == nil {
		return g, prefWebGPU, g.Name(), nil
	}
	if pref == prefWebGPU {
		return nil, "", "", gerr
	}
	return cpu.New(), prefCPU, "WebGPU unavailable: " + gerr.Error(), nil
}

// openWebGPU opens the browser's WebGPU adapter. Software adapters
// (SwiftShader in headless Chromium) are accepted: in a page the choice is
// between them and wasm on one core, not a native CPU backend.
func openWebGPU() (*gpu.Backend, error) {
	nav := js.Global().Get("navigator")
	if nav.IsUndefined() || nav.Get("gpu").IsUndefined() {
		return nil, fmt.Errorf("webgpu: this browser has no navigator.gpu")
	}
	g, err := gpu.New(gpu.Options{AllowSoftware: true})
	if err != nil {
		return nil, fmt.Errorf("webgpu: %w", err)
	}
	return g, nil
}
